// OpenAI's npm library, unchanged, against a Pictor server: `node openai-client.mjs BASE_URL KEY MODEL MODE`.
// MODE generate: one b64_json image; MODE busy: one request expected to be refused with 429. Prints one JSON line.
import OpenAI from "openai";

const [base, apiKey, model, mode] = process.argv.slice(2);
const client = new OpenAI({ baseURL: `${base}/v1`, apiKey, maxRetries: 0 });   // it retries a 429 by default
try {
  const r = await client.images.generate({ model, prompt: "a small red circle", response_format: "b64_json" });
  const png = Buffer.from(r.data[0].b64_json, "base64");
  const signature = png.subarray(1, 4).toString("latin1");
  console.log(JSON.stringify({ mode, ok: true, bytes: png.length, signature, width: png.readUInt32BE(16) }));
} catch (e) {
  if (!(e instanceof OpenAI.APIError)) throw e;
  const retry = e.headers?.get ? e.headers.get("retry-after") : e.headers?.["retry-after"];
  console.log(JSON.stringify({ mode, ok: false, status: e.status, code: e.code, retryAfter: retry,
    message: e.message }));
}
