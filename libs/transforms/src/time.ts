/**
 * Event time → epoch ms. Accepts epoch-ms numbers (or numeric strings, or bigint) and ISO-8601 strings
 * (a string without a zone is read as UTC, so results never depend on the machine's zone).
 * Returns undefined for anything else.
 */
export function parseTimestamp(value: unknown): number | undefined {
  if (typeof value === "number") return Number.isFinite(value) ? value : undefined;
  if (typeof value === "bigint") return Number(value);
  if (value instanceof Date) {
    const ms = value.getTime();
    return Number.isNaN(ms) ? undefined : ms;
  }
  if (typeof value !== "string") return undefined;
  const text = value.trim();
  if (text === "") return undefined;
  if (/^-?\d+(\.\d+)?$/.test(text)) return Number(text);
  if (!/^\d{4}-\d{2}-\d{2}/.test(text)) return undefined;
  const zoned = /T.*(Z|[+-]\d{2}:?\d{2})$/i.test(text) || !text.includes("T") ? text : `${text}Z`;
  const ms = Date.parse(text.includes("T") ? zoned : `${text}T00:00:00Z`);
  return Number.isNaN(ms) ? undefined : ms;
}
