/**
 * A storage fault at one transaction control statement: `SqlRunner.control` throws "disk I/O error" the first time
 * `when(text)` holds, then runs normally again. Every runner of the process shares the prototype; `restore` puts the
 * method back.
 */
import { SqlRunner } from "../../agents/sql-runner.ts";

export function failControlOnce(when: (text: string) => boolean): { restore(): void } {
  const control = SqlRunner.prototype.control;
  let fired = false;
  SqlRunner.prototype.control = function (this: SqlRunner, text: string): void {
    if (!fired && when(text)) {
      fired = true;
      throw new Error("disk I/O error");
    }
    control.call(this, text);
  };
  return {
    restore() {
      SqlRunner.prototype.control = control;
    },
  };
}
