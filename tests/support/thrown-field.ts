/** The `details.field` of what `fn` throws (a BridgeError naming the option at fault); undefined when it does not throw. */
export function thrownField(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return (err as { details?: { field?: string } }).details?.field;
  }
  return undefined;
}
