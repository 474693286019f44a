// Drives scribed with the official openai SDK, unmodified; prints one JSON
// object with what each call returned. Used by test_13_openai_sdk.py.
//   node openai_client.mjs BASE_URL AUDIO_FILE NOT_AUDIO_FILE
import fs from 'node:fs';
import OpenAI from 'openai';

const [, , baseURL, audio, notAudio] = process.argv;
const client = new OpenAI({ apiKey: 'sk-scribed-test', baseURL, maxRetries: 0, timeout: 120000 });
const file = () => fs.createReadStream(audio);
const out = {};

out.json = await client.audio.transcriptions.create({ file: file(), model: 'whisper-1' });
out.text = await client.audio.transcriptions.create({
  file: file(), model: 'whisper-1', response_format: 'text',
});
out.verbose = await client.audio.transcriptions.create({
  file: file(), model: 'whisper-1', response_format: 'verbose_json', language: 'en',
  temperature: 0, prompt: 'Hello.', timestamp_granularities: ['segment'],
});
out.srt = await client.audio.transcriptions.create({ file: file(), model: 'whisper-1', response_format: 'srt' });
out.vtt = await client.audio.transcriptions.create({ file: file(), model: 'whisper-1', response_format: 'vtt' });
const stream = await client.audio.transcriptions.create({ file: file(), model: 'whisper-1', stream: true });
out.stream = [];
for await (const ev of stream) out.stream.push(ev);
out.models = [];
for await (const m of client.models.list()) out.models.push(m.id);
try {
  await client.audio.transcriptions.create({ file: fs.createReadStream(notAudio), model: 'whisper-1' });
  out.error = null;
} catch (e) {
  out.error = { status: e.status, type: e.type, param: e.param, code: e.code, message: e.message };
}
try {
  await client.audio.translations.create({ file: file(), model: 'whisper-1' });
  out.translation = 'ok';
} catch (e) {
  out.translation = { status: e.status, message: e.message };
}
console.log(JSON.stringify(out));
