/** A tabular file could not be read: names the file and, where known, the 1-based data row and the column. */
export class TableReadError extends Error {
  readonly file: string;
  readonly row?: number;
  readonly column?: string;

  constructor(message: string, where: { file: string; row?: number; column?: string }) {
    const at = [where.file, where.row === undefined ? "" : `row ${where.row}`, where.column ?? ""]
      .filter((part) => part !== "")
      .join(", ");
    super(`${at}: ${message}`);
    this.name = "TableReadError";
    this.file = where.file;
    if (where.row !== undefined) this.row = where.row;
    if (where.column !== undefined) this.column = where.column;
  }
}
