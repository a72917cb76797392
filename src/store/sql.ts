/** Small SQL helpers shared by the store's modules. */

/**
 * A status set as an SQL list literal, `('A', 'B')`. Only for the status constants of src/domain
 * (fixed words without quotes); values from outside go through bound parameters.
 */
export function sqlList(values: readonly string[]): string {
  return `(${values.map((value) => `'${value}'`).join(", ")})`;
}

export function changed(result: { changes: number | bigint }): boolean {
  return Number(result.changes) > 0;
}
