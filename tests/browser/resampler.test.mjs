/*
 * resampler.test.mjs - the recorder worklet's DSP (web/recorder-worklet.js)
 * run in plain node with a stand-in AudioWorklet scope: chunk size and rate,
 * pass band, rejection of what would alias into 0-8 kHz, clipping, stereo
 * mix-down, flush. No browser needed: `node --test resampler.test.mjs`.
 */

import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const SOURCE = fs.readFileSync(path.join(HERE, "..", "..", "web", "recorder-worklet.js"), "utf8");

/* A processor as the browser would make it at `rate`, with its posted messages collected. */
function makeProcessor(rate, options = {}) {
    let Klass = null;
    class FakeBase {
        constructor() {
            this.posted = [];
            this.port = { postMessage: (m) => this.posted.push(m), onmessage: null };
        }
    }
    const scope = new Function("AudioWorkletProcessor", "registerProcessor", "sampleRate", SOURCE);
    scope(FakeBase, (name, k) => {
        assert.equal(name, "pcm16-recorder");
        Klass = k;
    }, rate);
    return new Klass({ processorOptions: options });
}

/* Feeds channels (arrays of Float32Array) in 128-frame render quanta; returns all PCM as Int16Array. */
function run(proc, channels, flush = true) {
    const n = channels[0].length;
    for (let i = 0; i < n; i += 128)
        proc.process([channels.map((c) => c.subarray(i, Math.min(i + 128, n)))]);
    if (flush)
        proc.port.onmessage({ data: "flush" });
    const parts = proc.posted.filter((m) => m.type === "pcm").map((m) => new Int16Array(m.samples));
    const out = new Int16Array(parts.reduce((a, p) => a + p.length, 0));
    let o = 0;
    for (const p of parts) {
        out.set(p, o);
        o += p.length;
    }
    return { out, parts };
}

function tone(rate, hz, seconds, amp = 0.5) {
    const x = new Float32Array(Math.round(rate * seconds));
    for (let i = 0; i < x.length; i++)
        x[i] = amp * Math.sin((2 * Math.PI * hz * i) / rate);
    return x;
}

/* RMS of the middle of the output, away from the filter's start-up. */
function rms(int16) {
    const a = Math.floor(int16.length * 0.2);
    const b = Math.floor(int16.length * 0.8);
    let s = 0;
    for (let i = a; i < b; i++)
        s += (int16[i] / 32768) ** 2;
    return Math.sqrt(s / (b - a));
}

const RATES = [48000, 44100, 22050, 16000, 8000];

test("resampler: 100 ms chunks at 16 kHz from every common input rate", () => {
    for (const rate of RATES) {
        const proc = makeProcessor(rate, { targetRate: 16000, chunkMs: 100 });
        const { out, parts } = run(proc, [tone(rate, 440, 2)]);
        const want = 2 * 16000;
        assert.ok(Math.abs(out.length - want) <= 64, /* the kernel's last half-width stays behind */
            `${rate} Hz: ${out.length} samples, want ~${want}`);
        for (const p of parts.slice(0, -1))
            assert.equal(p.length, 1600, `${rate} Hz: full chunks are 1600 samples`);
        assert.deepEqual(proc.posted.at(-1), { type: "flushed" });
    }
});

test("resampler: speech-band tones pass at full level", () => {
    for (const rate of RATES) {
        for (const hz of [300, 1000, 3000, 6500]) {
            if (hz >= 0.9 * Math.min(rate, 16000) / 2)
                continue;
            const { out } = run(makeProcessor(rate), [tone(rate, hz, 1, 0.5)]);
            const gain = rms(out) / (0.5 / Math.SQRT2);
            assert.ok(gain > 0.97 && gain < 1.03, `${rate} Hz input, ${hz} Hz tone: gain ${gain.toFixed(4)}`);
        }
    }
});

test("resampler: content above 8 kHz does not fold into the speech band", () => {
    for (const rate of [48000, 44100, 22050]) {
        for (const hz of [8500, 9000, 12000, 15000]) {
            if (hz >= rate / 2)
                continue;
            const { out } = run(makeProcessor(rate), [tone(rate, hz, 1, 0.5)]);
            const gain = rms(out) / (0.5 / Math.SQRT2);
            assert.ok(gain < 0.01, `${rate} Hz input, ${hz} Hz tone leaks at ${gain.toFixed(4)}`);
        }
    }
});

test("resampler: loud input clips instead of wrapping; silence stays silent", () => {
    const { out } = run(makeProcessor(48000), [tone(48000, 200, 0.5, 3)]);
    let min = 0;
    let max = 0;
    for (const v of out) {
        min = Math.min(min, v);
        max = Math.max(max, v);
    }
    assert.equal(max, 32767);
    assert.equal(min, -32768);
    const quiet = run(makeProcessor(44100), [new Float32Array(44100)]).out;
    assert.ok(quiet.every((v) => v === 0));
});

test("resampler: stereo is mixed down to mono", () => {
    const left = tone(48000, 1000, 1, 0.5);
    const silent = new Float32Array(left.length);
    const mono = run(makeProcessor(48000), [left]).out;
    const mixed = run(makeProcessor(48000), [left, silent]).out;
    const ratio = rms(mixed) / rms(mono);
    assert.ok(Math.abs(ratio - 0.5) < 0.01, `one silent channel halves the level (${ratio})`);
});

test("resampler: 48 kHz audio costs a small fraction of real time", (t) => {
    const proc = makeProcessor(48000);
    const x = tone(48000, 1000, 10);
    const t0 = process.hrtime.bigint();
    run(proc, [x], false);
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    t.diagnostic(`10 s of 48 kHz audio resampled in ${ms.toFixed(0)} ms`);
    assert.ok(ms < 2000, `10 s of audio took ${ms.toFixed(0)} ms`);
});
