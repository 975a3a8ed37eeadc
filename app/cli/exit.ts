/**
 * How CLI commands end early: a `CliExit` carries the exit code up to `main`, which prints nothing more. Commands
 * print their own message first. Exit codes: 0 done, 1 failure at run time, 2 bad usage or configuration.
 */
export class CliExit extends Error {
  readonly exitCode: number;

  constructor(exitCode: number, message = `exit ${exitCode}`) {
    super(message);
    this.name = "CliExit";
    this.exitCode = exitCode;
  }
}

export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;
