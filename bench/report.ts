/** The bench's results table: every figure recorded with its limit (and target) as it is measured; written to bench/results.json. */

export interface Row {
  key: string;
  value: number;
  limit?: string;
  target?: string;
  met?: boolean;
}

export const results: Record<string, number | string> = {};
export const rows: Row[] = [];

export function record(key: string, value: number, extra: { limit?: string; target?: string; met?: boolean } = {}): void {
  results[key] = value;
  rows.push({ key, value, ...extra });
  console.log(`  ${key} = ${value}${extra.limit ? `  (limit: ${extra.limit})` : ''}`);
}
