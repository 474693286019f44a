// Drives POST /v1/audio/speech with the official openai SDK (v6), called as
// OpenAI's docs call it; writes each response to a file and prints one JSON
// object with what the calls returned or threw. Used by test_52_speech_sdk.py.
//
//   node speech_client.mjs formats BASE_URL OUT_DIR
//   node speech_client.mjs error   BASE_URL PARAMS_JSON
import fs from 'node:fs';
import path from 'node:path';
import OpenAI from 'openai';

const [, , mode, baseURL, arg] = process.argv;
const client = new OpenAI({ apiKey: 'sk-scribed-test', baseURL, maxRetries: 0 });

async function formats() {
  const out = {};
  for (const format of ['mp3', 'opus', 'aac', 'flac', 'wav', 'pcm']) {
    const response = await client.audio.speech.create({
      model: 'tts-1', voice: 'alloy', input: 'Today is a wonderful day to build something people love!',
      response_format: format,
    });
    const file = path.join(arg, `speech.${format}`);
    fs.writeFileSync(file, Buffer.from(await response.arrayBuffer()));
    out[format] = { file, content_type: response.headers.get('content-type') };
  }
  // the docs' default call: no format (mp3), instructions ignored, a speed
  const response = await client.audio.speech.create({
    model: 'gpt-4o-mini-tts', voice: 'coral', input: 'Hello world.',
    instructions: 'Speak in a cheerful and positive tone.', speed: 1.5,
  });
  const file = path.join(arg, 'default.mp3');
  fs.writeFileSync(file, Buffer.from(await response.arrayBuffer()));
  out.default = { file, content_type: response.headers.get('content-type') };
  return out;
}

async function error() {
  try {
    await client.audio.speech.create({ model: 'tts-1', voice: 'alloy', input: 'hi', ...JSON.parse(arg) });
    return { error: null };
  } catch (e) {
    return {
      error: {
        class: e.constructor.name, api_error: e instanceof OpenAI.APIError,
        status: e.status ?? null, type: e.type ?? null, param: e.param ?? null, message: e.message,
      },
    };
  }
}

const run = { formats, error }[mode];
console.log(JSON.stringify(await run()));
