/** The agent's synchronous `sql` tagged template as the device stores see it (always bound parameters). */
export type SqlValue = null | number | bigint | string | Uint8Array | boolean;

export type SqlTag = <Row = Record<string, SqlValue>>(strings: TemplateStringsArray, ...values: SqlValue[]) => Row[];
