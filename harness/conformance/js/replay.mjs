// Replays captured response bodies through JavaScript SSE clients, read by read, as they
// arrived, and prints what each client made of them.
//
// stdin, one JSON document:
//   {"clients": ["eventsource-parser", "openai"], "max_events": 20000,
//    "exchanges": [{"label": "stream-1", "api": "chat" | "completions" | "responses" | null,
//                   "status": 200, "headers": [["content-type", "text/event-stream"]],
//                   "reads": ["<base64 of one read>", ...]}]}
//
// stdout, one JSON document:
//   {"node": "20.20.2", "versions": {"eventsource-parser": "3.1.1", "openai": "6.49.0"},
//    "exchanges": [{"label": "stream-1", "results": {
//       "eventsource-parser": {"events": [[type, data], ...], "count": 12, "error": null},
//       "openai": {"events": [[type, data], ...], "count": 12, "error": null,
//                  "client": {"text": "...", "finish_reasons": ["length"], "chunks": 9,
//                             "error": null}}}}]}
//
// "events" are the first max_events events a client dispatched, "count" all of them. An
// event's type is null when the stream named none. "error" is null or
// {"name": ..., "message": ...}: what the client threw.
//
// The packages are looked up in the directory named by SSE_HARNESS_JS_PACKAGES (one where
// `npm ci` was run with this package.json), else beside this file.

import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const prefix = process.env.SSE_HARNESS_JS_PACKAGES || here;
const require = createRequire(path.join(prefix, "package.json"));

const MAJOR = Number(process.versions.node.split(".")[0]);
if (MAJOR < 18) {
  process.stderr.write(`node ${process.versions.node} is too old: 18 or newer is needed\n`);
  process.exit(3);
}

/** The version of the package that `require(name)` loads (its manifest is not exported). */
function version(name) {
  let dir = path.dirname(require.resolve(name));
  for (;;) {
    try {
      const manifest = JSON.parse(readFileSync(path.join(dir, "package.json"), "utf8"));
      if (manifest.name === name) return manifest.version;
    } catch {
      // no manifest here: look further up
    }
    const parent = path.dirname(dir);
    if (parent === dir) return null;
    dir = parent;
  }
}

function thrown(err) {
  const message = err && err.message !== undefined ? String(err.message) : String(err);
  return { name: (err && err.constructor && err.constructor.name) || "Error", message };
}

/** A body that hands over the captured reads one by one, as the network did. */
function body(reads) {
  let next = 0;
  return new ReadableStream({
    pull(controller) {
      if (next < reads.length) {
        controller.enqueue(reads[next]);
        next += 1;
      } else {
        controller.close();
      }
    },
  });
}

function response(exchange) {
  return new Response(body(exchange.reads), {
    status: exchange.status,
    headers: exchange.headers,
  });
}

/** The events a client dispatched: the first `limit` kept, every one counted. */
class Dispatched {
  constructor(limit) {
    this.limit = limit;
    this.events = [];
    this.count = 0;
    this.error = null;
  }

  add(type, data) {
    if (this.count < this.limit) this.events.push([type ?? null, data]);
    this.count += 1;
  }

  result() {
    return { events: this.events, count: this.count, error: this.error };
  }
}

/** eventsource-parser as the Vercel AI SDK runs it (`parseJsonEventStream`): bytes through
 * a TextDecoderStream, then an EventSourceParserStream. */
async function eventsourceParser(exchange, limit) {
  const { EventSourceParserStream } = require("eventsource-parser/stream");
  const dispatched = new Dispatched(limit);
  try {
    const parsed = body(exchange.reads)
      .pipeThrough(new TextDecoderStream())
      .pipeThrough(new EventSourceParserStream());
    for await (const event of parsed) dispatched.add(event.event, event.data);
  } catch (err) {
    dispatched.error = thrown(err);
  }
  return dispatched.result();
}

/** The openai package's own SSE reader: the messages `Stream.fromSSEResponse` iterates. */
async function openaiEvents(exchange, limit) {
  const { _iterSSEMessages } = require("openai/core/streaming");
  const dispatched = new Dispatched(limit);
  try {
    for await (const sse of _iterSSEMessages(response(exchange), new AbortController())) {
      dispatched.add(sse.event, sse.data);
    }
  } catch (err) {
    dispatched.error = thrown(err);
  }
  return dispatched.result();
}

const REQUESTS = {
  chat: (client) =>
    client.chat.completions.create({
      model: "m",
      messages: [{ role: "user", content: "replay" }],
      stream: true,
    }),
  completions: (client) =>
    client.completions.create({ model: "m", prompt: "replay", stream: true }),
  responses: (client) => client.responses.create({ model: "m", input: "replay", stream: true }),
};

/** The openai client itself, its fetch answered with the captured response: the text of
 * choice 0 and the finish reasons it reports (a Responses stream: the final status). */
async function openaiClient(exchange) {
  const { OpenAI } = require("openai");
  const request = REQUESTS[exchange.api];
  if (request === undefined) return null;
  const client = new OpenAI({
    apiKey: "replay",
    baseURL: "http://replay.invalid/v1",
    maxRetries: 0,
    logLevel: "off",
    fetch: async () => response(exchange),
  });
  const parts = [];
  const finishReasons = [];
  let chunks = 0;
  let error = null;
  try {
    for await (const chunk of await request(client)) {
      chunks += 1;
      if (exchange.api === "responses") {
        if (chunk.type === "response.output_text.delta") parts.push(chunk.delta ?? "");
        if (["response.completed", "response.incomplete", "response.failed"].includes(chunk.type)) {
          const details = chunk.response?.incomplete_details;
          finishReasons.push(details?.reason ?? chunk.response?.status ?? chunk.type);
        }
        continue;
      }
      for (const choice of chunk.choices ?? []) {
        if (choice.index === 0) {
          parts.push((exchange.api === "chat" ? choice.delta?.content : choice.text) ?? "");
        }
        if (choice.finish_reason) finishReasons.push(choice.finish_reason);
      }
    }
  } catch (err) {
    error = thrown(err);
  }
  return { text: parts.join(""), finish_reasons: finishReasons, chunks, error };
}

async function openai(exchange, limit) {
  return { ...(await openaiEvents(exchange, limit)), client: await openaiClient(exchange) };
}

const CLIENTS = { "eventsource-parser": eventsourceParser, openai };

async function main() {
  const request = JSON.parse(readFileSync(0, "utf8"));
  const limit = request.max_events ?? Infinity;
  const clients = request.clients.filter((name) => name in CLIENTS);
  const versions = Object.fromEntries(clients.map((name) => [name, version(name)]));
  const exchanges = [];
  for (const exchange of request.exchanges) {
    exchange.reads = exchange.reads.map((read) => new Uint8Array(Buffer.from(read, "base64")));
    const results = {};
    for (const name of clients) {
      results[name] = await CLIENTS[name](exchange, limit);
    }
    exchanges.push({ label: exchange.label, results });
  }
  process.stdout.write(JSON.stringify({ node: process.versions.node, versions, exchanges }));
}

main().catch((err) => {
  process.stderr.write(`${err && err.stack ? err.stack : err}\n`);
  process.exit(1);
});
