/** Buckets for tests on the S3-compatible server (call `clusters("s3")` first). */
import { randomBytes } from "node:crypto";
import type { S3Client } from "@aws-sdk/client-s3";

/** A client for the server of S3_ENDPOINT (the SDK is loaded only by tests that use it). */
export async function s3Client(): Promise<S3Client> {
  const env = process.env;
  if (!env["S3_ENDPOINT"]) throw new Error('no S3_ENDPOINT: call `await clusters("s3")` first');
  const { S3Client } = await import("@aws-sdk/client-s3");
  return new S3Client({
    endpoint: env["S3_ENDPOINT"],
    forcePathStyle: true,
    region: env["S3_REGION"] ?? "us-east-1",
    credentials: {
      accessKeyId: env["S3_ACCESS_KEY_ID"] ?? "",
      secretAccessKey: env["S3_SECRET_ACCESS_KEY"] ?? "",
    },
  });
}

/** A new, empty bucket with a unique name; returns the name. */
export async function newBucket(prefix: string): Promise<string> {
  const name = `${prefix}-${Date.now().toString(36)}-${randomBytes(3).toString("hex")}`.toLowerCase();
  const { CreateBucketCommand } = await import("@aws-sdk/client-s3");
  const client = await s3Client();
  await client.send(new CreateBucketCommand({ Bucket: name }));
  client.destroy();
  return name;
}
