import { TableReadError } from "./errors.js";
import { openTextStream, reasonOf } from "./storage.js";

const NUMBER = /^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/;

/** CSV cell → value: numeric-looking text becomes a number, an empty cell null, anything else stays text. */
function cellValue(text: string, quoted: boolean): unknown {
  if (quoted) return text;
  if (text === "") return null;
  return NUMBER.test(text) ? Number(text) : text;
}

/**
 * Streams RFC 4180 CSV (quoted fields, doubled quotes, CRLF or LF, newlines inside quotes).
 * The first record is the header. Yields one object per data row; `row` numbers start at 1.
 */
export async function* readCsv(file: string, columns?: string[]): AsyncGenerator<Record<string, unknown>> {
  let header: string[] | undefined;
  let keep: number[] = [];
  let row = 0;
  let fields: unknown[] = [];
  let field = "";
  let quoted = false; // the current field opened with a quote: its text is kept verbatim
  let inQuotes = false;
  let pendingQuote = false; // a quote inside quotes: an escaped quote if another follows, else the close

  const endField = () => {
    if (!quoted && field.endsWith("\r")) field = field.slice(0, -1);
    fields.push(cellValue(field, quoted));
    field = "";
    quoted = false;
  };
  const endRecord = (): Record<string, unknown> | undefined => {
    const blank = fields.length === 0 && field === "" && !quoted;
    if (blank) return undefined;
    endField();
    const values = fields;
    fields = [];
    if (!header) {
      header = values.map(String);
      keep = columns ? columns.map((name) => header!.indexOf(name)) : header.map((_, i) => i);
      const missing = columns?.find((_, i) => keep[i] === -1);
      if (missing !== undefined) throw new TableReadError("no such column", { file, column: missing });
      return undefined;
    }
    row++;
    if (values.length !== header.length) {
      throw new TableReadError(`expected ${header.length} fields, found ${values.length}`, { file, row });
    }
    const out: Record<string, unknown> = {};
    for (const i of keep) out[header[i]!] = values[i];
    return out;
  };

  const stream = await openTextStream(file).catch((error) => {
    throw new TableReadError(reasonOf(error, file), { file });
  });
  for await (const chunk of stream) {
    const text = chunk as string;
    const records: Record<string, unknown>[] = [];
    for (let i = 0; i < text.length; i++) {
      const c = text[i]!;
      if (pendingQuote) {
        pendingQuote = false;
        if (c === '"') {
          field += '"';
          continue;
        }
        inQuotes = false; // that quote closed the field; c is handled below
      } else if (inQuotes) {
        if (c === '"') pendingQuote = true;
        else field += c;
        continue;
      }
      if (c === '"' && field === "" && !quoted) {
        inQuotes = true;
        quoted = true;
      } else if (c === ",") {
        endField();
      } else if (c === "\n") {
        const record = endRecord();
        if (record) records.push(record);
      } else if (!(c === "\r" && quoted)) {
        field += c;
      }
    }
    yield* records;
  }
  if (inQuotes && !pendingQuote)
    throw new TableReadError("unterminated quoted field", { file, row: row + 1 });
  const last = endRecord();
  if (last) yield last;
  if (!header && columns?.length) throw new TableReadError("no header row", { file });
}

function csvCell(value: unknown): string {
  if (value === null || value === undefined) return "";
  const text =
    value instanceof Date
      ? value.toISOString()
      : typeof value === "object"
        ? JSON.stringify(value)
        : String(value);
  return /[",\r\n]/.test(text) || text === "" ? `"${text.replaceAll('"', '""')}"` : text;
}

export function csvLine(values: unknown[]): string {
  return values.map(csvCell).join(",") + "\n";
}
