/**
 * Where offline files live: a local path, or an object in an S3-compatible bucket named
 * `s3://bucket/prefix/...`. Every offline reader and writer (tables, the archive, the archiver) goes
 * through these functions, so a bucket is accepted wherever a path is.
 *
 * Semantics both sides keep:
 * - a write is atomic: readers see the whole object or none (local: temp file + rename; S3: PUT);
 * - `createObject` writes only if nothing is there yet, atomically (local: link(2); S3: PutObject
 *   with If-None-Match: *, answered 412 when the key exists) — the archiver's fence;
 * - a "directory" on S3 is a key prefix ending in "/" (it exists while an object is below it).
 *
 * S3 settings: S3_ENDPOINT (an S3-compatible server; path-style addressing unless
 * S3_FORCE_PATH_STYLE=false), S3_REGION (else AWS_REGION, else us-east-1), and S3_ACCESS_KEY_ID /
 * S3_SECRET_ACCESS_KEY (else the AWS SDK's default credential chain: AWS_* variables, profiles, IAM roles).
 */
import { createReadStream } from "node:fs";
import { link, mkdir, readdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, dirname, join } from "node:path";
import type { Readable } from "node:stream";
import type { S3Client } from "@aws-sdk/client-s3";

export const isS3 = (location: string) => location.startsWith("s3://");

interface ObjectName {
  bucket: string;
  /** The key, without a leading or trailing "/" ("" for the bucket itself). */
  key: string;
}

function objectName(location: string): ObjectName {
  const match = /^s3:\/\/([^/]+)\/*(.*?)\/*$/.exec(location);
  if (!match) throw new StorageError(`${location}: not an s3://bucket/key URL`, location);
  return { bucket: match[1]!, key: match[2]! };
}

/** A location could not be read or written; `missing` when nothing is there. */
export class StorageError extends Error {
  override name = "StorageError";
  constructor(
    message: string,
    readonly location: string,
    readonly missing = false,
  ) {
    super(message);
  }
}

/** `base` joined with path parts, as a path or as an s3:// URL. */
export function joinLocation(base: string, ...parts: string[]): string {
  if (!isS3(base)) return join(base, ...parts);
  const segments = parts.flatMap((part) => part.split("/")).filter((s) => s !== "" && s !== ".");
  return [base.replace(/\/+$/, ""), ...segments].join("/");
}

/** The last path segment of a location. */
export const baseName = (location: string) =>
  isS3(location) ? location.replace(/\/+$/, "").split("/").at(-1)! : basename(location);

// ── S3 client: created on first use, so processes that never touch a bucket never load the SDK ──

let client: Promise<{ s3: S3Client; sdk: typeof import("@aws-sdk/client-s3") }> | undefined;

function s3() {
  client ??= import("@aws-sdk/client-s3").then((sdk) => {
    const env = process.env;
    const endpoint = env["S3_ENDPOINT"] || undefined;
    const accessKeyId = env["S3_ACCESS_KEY_ID"];
    const secretAccessKey = env["S3_SECRET_ACCESS_KEY"];
    const s3 = new sdk.S3Client({
      region: env["S3_REGION"] || env["AWS_REGION"] || "us-east-1",
      ...(endpoint ? { endpoint, forcePathStyle: env["S3_FORCE_PATH_STYLE"] !== "false" } : {}),
      ...(accessKeyId && secretAccessKey ? { credentials: { accessKeyId, secretAccessKey } } : {}),
      maxAttempts: 5,
    });
    return { s3, sdk };
  });
  return client;
}

const status = (error: unknown) =>
  (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;

function s3Failure(error: unknown, location: string): StorageError {
  const name = (error as Error).name;
  if (name === "NoSuchKey" || name === "NotFound" || status(error) === 404) {
    const what = name === "NoSuchBucket" ? "no such bucket" : "no such object";
    return new StorageError(`${location}: ${what}`, location, true);
  }
  return new StorageError(`${location}: S3 ${name}: ${(error as Error).message}`, location);
}

// ── Reading ──────────────────────────────────────────────────────────────────────────────────

/** What is at a location: a file (object), a directory (prefix), or nothing. */
export async function locationKind(location: string): Promise<"file" | "directory" | undefined> {
  if (!isS3(location)) {
    const info = await stat(location).catch(() => undefined);
    return info?.isDirectory() ? "directory" : info ? "file" : undefined;
  }
  const { bucket, key } = objectName(location);
  const { s3: client, sdk } = await s3();
  if (key !== "") {
    try {
      await client.send(new sdk.HeadObjectCommand({ Bucket: bucket, Key: key }));
      return "file";
    } catch (error) {
      if (status(error) !== 404) throw s3Failure(error, location);
    }
  }
  try {
    const listed = await client.send(
      new sdk.ListObjectsV2Command({ Bucket: bucket, Prefix: key === "" ? "" : `${key}/`, MaxKeys: 1 }),
    );
    return (listed.KeyCount ?? 0) > 0 ? "directory" : undefined;
  } catch (error) {
    if (status(error) === 404) return undefined; // no such bucket
    throw s3Failure(error, location);
  }
}

export interface DirectoryEntry {
  name: string;
  directory: boolean;
}

/** The entries directly inside a directory ([] when there is none). */
export async function listDirectory(location: string): Promise<DirectoryEntry[]> {
  if (!isS3(location)) {
    const entries = await readdir(location, { withFileTypes: true }).catch((error) => {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return [];
      throw error;
    });
    return entries.map((e) => ({ name: e.name, directory: e.isDirectory() }));
  }
  const out: DirectoryEntry[] = [];
  for await (const page of listPages(location, "/")) {
    for (const p of page.CommonPrefixes ?? [])
      out.push({ name: p.Prefix!.slice(0, -1).split("/").at(-1)!, directory: true });
    for (const o of page.Contents ?? []) out.push({ name: o.Key!.split("/").at(-1)!, directory: false });
  }
  return out;
}

/** Every file below a directory, recursively, as full locations. */
export async function listFilesBelow(location: string): Promise<string[]> {
  if (!isS3(location)) {
    const entries = await readdir(location, { recursive: true, withFileTypes: true });
    return entries.filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name));
  }
  const { bucket } = objectName(location);
  const out: string[] = [];
  for await (const page of listPages(location)) {
    for (const o of page.Contents ?? []) if (!o.Key!.endsWith("/")) out.push(`s3://${bucket}/${o.Key}`);
  }
  return out;
}

async function* listPages(location: string, delimiter?: string) {
  const { bucket, key } = objectName(location);
  const { s3: client, sdk } = await s3();
  let token: string | undefined;
  do {
    let page: import("@aws-sdk/client-s3").ListObjectsV2CommandOutput;
    try {
      page = await client.send(
        new sdk.ListObjectsV2Command({
          Bucket: bucket,
          Prefix: key === "" ? "" : `${key}/`,
          ...(delimiter ? { Delimiter: delimiter } : {}),
          ...(token ? { ContinuationToken: token } : {}),
        }),
      );
    } catch (error) {
      throw s3Failure(error, location);
    }
    yield page;
    token = page.NextContinuationToken;
  } while (token);
}

/** The whole content of a file or object. */
export async function readObject(location: string): Promise<Uint8Array> {
  if (!isS3(location)) {
    return readFile(location).catch((error) => {
      if ((error as NodeJS.ErrnoException).code === "ENOENT")
        throw new StorageError(`${location}: no such file`, location, true);
      throw error;
    });
  }
  const { bucket, key } = objectName(location);
  const { s3: client, sdk } = await s3();
  try {
    const response = await client.send(new sdk.GetObjectCommand({ Bucket: bucket, Key: key }));
    return await response.Body!.transformToByteArray();
  } catch (error) {
    throw s3Failure(error, location);
  }
}

/** The reason without the location (for errors that name the file themselves). */
export const reasonOf = (error: unknown, location: string) =>
  (error as Error).message.replace(`${location}: `, "");

/** The text of a file or object as a stream of UTF-8 strings (for CSV and JSONL). */
export async function openTextStream(location: string): Promise<Readable> {
  if (!isS3(location)) {
    const stream = createReadStream(location, { encoding: "utf8", highWaterMark: 1 << 20 });
    // Open before returning, so a missing file fails here, with the same error as on S3.
    await new Promise<void>((resolve, reject) => {
      stream.once("open", () => resolve());
      stream.once("error", (error) =>
        reject(
          (error as NodeJS.ErrnoException).code === "ENOENT"
            ? new StorageError(`${location}: no such file`, location, true)
            : error,
        ),
      );
    });
    return stream;
  }
  const { bucket, key } = objectName(location);
  const { s3: client, sdk } = await s3();
  try {
    const response = await client.send(new sdk.GetObjectCommand({ Bucket: bucket, Key: key }));
    return (response.Body as Readable).setEncoding("utf8");
  } catch (error) {
    throw s3Failure(error, location);
  }
}

// ── Writing ──────────────────────────────────────────────────────────────────────────────────

const tempBeside = (file: string) =>
  join(dirname(file), `.${basename(file)}.${process.pid}-${Math.random().toString(36).slice(2)}.tmp`);

/** Writes a file or object atomically (readers never see part of it); replaces what was there. */
export async function writeObject(location: string, data: Uint8Array | string): Promise<void> {
  if (!isS3(location)) {
    await mkdir(dirname(location), { recursive: true });
    const temp = tempBeside(location);
    try {
      await writeFile(temp, data);
      await rename(temp, location);
    } catch (error) {
      await rm(temp, { force: true });
      throw error;
    }
    return;
  }
  await put(location, data);
}

/**
 * Writes a file or object only if none is there, atomically: true when written, false when the
 * location was taken (by an earlier or a concurrent writer).
 */
export async function createObject(location: string, data: Uint8Array | string): Promise<boolean> {
  if (!isS3(location)) {
    await mkdir(dirname(location), { recursive: true });
    const temp = tempBeside(location);
    await writeFile(temp, data);
    try {
      await link(temp, location); // fails with EEXIST, and never exposes a partial file
      return true;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "EEXIST") return false;
      throw error;
    } finally {
      await rm(temp, { force: true });
    }
  }
  for (let attempt = 0; ; attempt++) {
    try {
      await put(location, data, true);
      return true;
    } catch (error) {
      if (status(error) === 412) return false;
      // 409: another conditional write to the key is in flight; S3 says retry (one of them wins).
      if (status(error) === 409 && attempt < 5) {
        await new Promise((r) => setTimeout(r, 50 * 2 ** attempt));
        continue;
      }
      throw s3Failure(error, location);
    }
  }
}

async function put(
  location: string,
  data: Uint8Array | string | Readable,
  ifAbsent = false,
  length?: number,
) {
  const { bucket, key } = objectName(location);
  const { s3: client, sdk } = await s3();
  const command = new sdk.PutObjectCommand({
    Bucket: bucket,
    Key: key,
    Body: data,
    ...(length === undefined ? {} : { ContentLength: length }),
    ...(ifAbsent ? { IfNoneMatch: "*" } : {}),
  });
  if (ifAbsent) return client.send(command); // the caller reads 412 / 409
  try {
    return await client.send(command);
  } catch (error) {
    throw s3Failure(error, location);
  }
}

/** Removes a file or object; nothing there is fine. */
export async function deleteObject(location: string): Promise<void> {
  if (!isS3(location)) return rm(location, { force: true });
  const { bucket, key } = objectName(location);
  const { s3: client, sdk } = await s3();
  try {
    await client.send(new sdk.DeleteObjectCommand({ Bucket: bucket, Key: key }));
  } catch (error) {
    throw s3Failure(error, location);
  }
}

/**
 * Runs `write(temp)` on a local temp file, then makes it the content of `location` atomically: a
 * rename beside a local target, an upload for an object. For writers that stream into a file.
 */
export async function writeThroughTemp(
  location: string,
  write: (temp: string) => Promise<void>,
): Promise<void> {
  const local = !isS3(location);
  if (local) await mkdir(dirname(location), { recursive: true });
  const temp = local ? tempBeside(location) : join(tmpdir(), `tessera-${baseName(tempBeside(location))}`);
  try {
    await write(temp);
    if (local) await rename(temp, location);
    else {
      const { size } = await stat(temp);
      await put(location, createReadStream(temp), false, size);
    }
  } finally {
    await rm(temp, { force: true });
  }
}
