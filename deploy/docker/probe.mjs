// Container health check without curl in the image: exit 0 when the URL answers 2xx within the timeout.
// Usage: node probe.mjs http://127.0.0.1:9101/readyz [timeoutMs]
const [url, timeoutMs = "2000"] = process.argv.slice(2);
if (!url) {
  console.error("usage: node probe.mjs <url> [timeoutMs]");
  process.exit(2);
}
try {
  const response = await fetch(url, { signal: AbortSignal.timeout(Number(timeoutMs)) });
  if (!response.ok) console.error(`${url}: HTTP ${response.status} ${await response.text()}`);
  process.exit(response.ok ? 0 : 1);
} catch (error) {
  console.error(`${url}: ${error.cause?.code ?? error.message}`);
  process.exit(1);
}
