/**
 * A nullable numeric column held as Arrow holds one: the values in a Float64Array and a validity
 * bitmap (bit i of byte i >> 3 set when row i has a value). 8 bytes and a bit per row, where a JS
 * array of numbers costs a pointer plus a 16-byte heap number for every non-integer value; the
 * Parquet writer takes the buffers as they are.
 */
export class NumberColumn {
  readonly values: Float64Array;
  readonly validity: Uint8Array;

  /** `length` rows, all null. */
  constructor(readonly length: number) {
    this.values = new Float64Array(length);
    this.validity = new Uint8Array((length + 7) >> 3);
  }

  set(row: number, value: number | null): void {
    if (value === null) {
      this.validity[row >> 3]! &= ~(1 << (row & 7));
      return;
    }
    this.values[row] = value;
    this.validity[row >> 3]! |= 1 << (row & 7);
  }

  get(row: number): number | null {
    return (this.validity[row >> 3]! >> (row & 7)) & 1 ? this.values[row]! : null;
  }

  /** Null rows in [from, to). */
  nullsIn(from: number, to: number): number {
    let valid = 0;
    for (let row = from; row < to; row++) valid += (this.validity[row >> 3]! >> (row & 7)) & 1;
    return to - from - valid;
  }
}

/** A column a table writer takes: plain values, or a NumberColumn. */
export type WritableColumn = ArrayLike<unknown> | NumberColumn;

/** Row `row` of a column as a plain value. */
export const valueAt = (column: WritableColumn | undefined, row: number): unknown =>
  column instanceof NumberColumn ? column.get(row) : column?.[row];
