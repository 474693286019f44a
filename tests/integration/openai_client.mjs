// Drives scribed with the official openai SDK (v6), called as OpenAI's docs call
// it; prints one JSON object with what the calls returned or threw. Used by
// test_13_openai_sdk.py.
//
//   node openai_client.mjs formats   BASE_URL AUDIO UPLOAD
//   node openai_client.mjs translate BASE_URL AUDIO UPLOAD
//   node openai_client.mjs error     BASE_URL AUDIO UPLOAD API_KEY PARAMS_JSON
//   node openai_client.mjs load      BASE_URL AUDIO UPLOAD CALLS IN_FLIGHT CONNECTION
//
// UPLOAD is how the file is passed, the two ways the SDK's docs show:
//   stream  fs.createReadStream(path): sent chunked (Transfer-Encoding), never retried
//   buffer  await toFile(Buffer, name): sent with its length, retried on 429 / 5xx
// CONNECTION (load): keep-alive (the SDK's default pool) or close (one connection a call).
import fs from 'node:fs';
import path from 'node:path';
import OpenAI, { toFile } from 'openai';

const [, , mode, baseURL, audio, upload, ...rest] = process.argv;

async function file() {
  if (upload === 'stream') return fs.createReadStream(audio);
  return toFile(fs.readFileSync(audio), path.basename(audio));
}

// An error as the SDK typed it: the class is what a caller's `instanceof` sees.
function typed(e) {
  return {
    class: e.constructor.name,
    api_error: e instanceof OpenAI.APIError,
    connection_error: e instanceof OpenAI.APIConnectionError,
    status: e.status ?? null, type: e.type ?? null, param: e.param ?? null, code: e.code ?? null,
    message: e.message,
  };
}

async function formats() {
  const client = new OpenAI({ apiKey: 'sk-scribed-test', baseURL, maxRetries: 0 });
  const out = {};
  out.json = await client.audio.transcriptions.create({ file: await file(), model: 'whisper-1' });
  for (const format of ['text', 'srt', 'vtt']) {
    out[format] = await client.audio.transcriptions.create({
      file: await file(), model: 'whisper-1', response_format: format,
    });
  }
  out.verbose = await client.audio.transcriptions.create({
    file: await file(), model: 'whisper-1', response_format: 'verbose_json', language: 'en',
    temperature: 0, prompt: 'Hello.', timestamp_granularities: ['word', 'segment'],
  });
  const stream = await client.audio.transcriptions.create({
    file: await file(), model: 'whisper-1', stream: true,
  });
  out.stream = [];
  for await (const event of stream) out.stream.push(event);
  out.models = [];
  for await (const m of client.models.list()) out.models.push(m.id);
  out.retrieved = await client.models.retrieve('whisper-1');
  try {
    await client.models.retrieve('no-such-model');
  } catch (e) {
    out.unknown = { status: e.status, name: e.constructor.name, code: e.code, param: e.param };
  }
  return out;
}

async function translate() {
  const client = new OpenAI({ apiKey: 'sk-scribed-test', baseURL, maxRetries: 0 });
  return {
    json: await client.audio.translations.create({ file: await file(), model: 'whisper-1' }),
    verbose: await client.audio.translations.create({
      file: await file(), model: 'whisper-1', response_format: 'verbose_json',
    }),
    text: await client.audio.translations.create({
      file: await file(), model: 'whisper-1', response_format: 'text',
    }),
  };
}

async function error() {
  const [apiKey, params] = rest;
  const client = new OpenAI({ apiKey, baseURL, maxRetries: 0 });
  try {
    await client.audio.transcriptions.create({
      file: await file(), model: 'whisper-1', ...JSON.parse(params),
    });
    return { error: null };
  } catch (e) {
    return { error: typed(e) };
  }
}

// CALLS calls, IN_FLIGHT at a time, with the SDK's default retries; counts the outcomes.
async function load() {
  const [calls, inFlight, connection] = rest;
  const client = new OpenAI({
    apiKey: 'sk-scribed-test', baseURL,
    ...(connection === 'close' ? { defaultHeaders: { Connection: 'close' } } : {}),
  });
  const outcomes = {};
  let next = 0;
  async function worker() {
    while (next < +calls) {
      next++;
      let key = 'ok';
      try {
        await client.audio.transcriptions.create({ file: await file(), model: 'whisper-1' });
      } catch (e) {
        const t = typed(e);
        key = `${t.class}:${t.status}:${t.code}` + (t.connection_error ? `:${e.cause?.cause?.code ?? e.cause?.code ?? e.cause?.message}` : '');
      }
      outcomes[key] = (outcomes[key] || 0) + 1;
    }
  }
  await Promise.all(Array.from({ length: +inFlight }, worker));
  return { outcomes };
}

const modes = { formats, translate, error, load };
console.log(JSON.stringify(await modes[mode]()));
