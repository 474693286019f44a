/*
 * recorder-worklet.js - AudioWorklet processor for the "Record" button: mixes
 * the microphone to mono, resamples it from the context's rate (usually 48 or
 * 44.1 kHz) to 16 kHz with a windowed-sinc low-pass (so 8-24 kHz content does
 * not fold into the speech band), and posts little-endian 16-bit PCM chunks
 * of ~100 ms to app.js, which sends them over the WebSocket. No networking
 * and no VAD here; the server decides what is speech.
 * Messages in: "flush" (post what is buffered, then {type:"flushed"}),
 * "stop" (end the processor). Out: {type:"pcm", samples: ArrayBuffer}.
 */

const TARGET_RATE = 16000;
const ZERO_CROSSINGS = 24; /* sinc lobes on each side of the kernel centre */
const PHASES = 128;        /* kernel table steps per input sample (linear between) */
const PASSBAND = 0.95;     /* cut-off (-6 dB) as a fraction of the lower Nyquist frequency:
                              flat to ~7 kHz, < -60 dB from ~8.3 kHz at 48 kHz in */

class Pcm16Recorder extends AudioWorkletProcessor {
    constructor(options) {
        super();
        const opts = (options && options.processorOptions) || {};
        this.outRate = opts.targetRate || TARGET_RATE;
        this.ratio = sampleRate / this.outRate; /* input samples per output sample */
        const chunkMs = opts.chunkMs || 100;
        this.chunk = new Int16Array(Math.round((this.outRate * chunkMs) / 1000));
        this.fill = 0;
        this.makeKernel();
        /* input history: buf[0] is input sample number `base`; zeros before the start */
        this.buf = new Float32Array(8192);
        this.len = this.half;
        this.base = -this.half;
        this.t = 0; /* input position (in samples, fractional) of the next output sample */
        this.running = true;
        this.port.onmessage = (e) => {
            if (e.data === "flush") {
                this.post();
                this.port.postMessage({ type: "flushed" });
            } else if (e.data === "stop") {
                this.running = false;
            }
        };
    }

    /* Blackman-windowed sinc, tabulated over |d| in [0, half] input samples. */
    makeKernel() {
        const fc = 0.5 * Math.min(1, 1 / this.ratio) * PASSBAND; /* cycles per input sample */
        this.half = Math.ceil(ZERO_CROSSINGS / (2 * fc));
        const n = this.half * PHASES + 2;
        this.table = new Float32Array(n);
        for (let i = 0; i < n; i++) {
            const d = i / PHASES;
            if (d >= this.half)
                break;
            const x = Math.PI * 2 * fc * d;
            const sinc = x === 0 ? 1 : Math.sin(x) / x;
            const a = (Math.PI * d) / this.half;
            const win = 0.42 + 0.5 * Math.cos(a) + 0.08 * Math.cos(2 * a);
            this.table[i] = 2 * fc * sinc * win;
        }
    }

    append(x) {
        if (this.len + x.length > this.buf.length) {
            const grown = new Float32Array(Math.max(this.buf.length * 2, this.len + x.length));
            grown.set(this.buf.subarray(0, this.len));
            this.buf = grown;
        }
        this.buf.set(x, this.len);
        this.len += x.length;
    }

    /*
     * Output samples whose kernel window is complete; then forget old input.
     * Taps are one input sample apart, i.e. PHASES table steps, so each side
     * of the kernel walks the table with one constant interpolation fraction.
     */
    resample() {
        const half = this.half;
        const tab = this.table;
        const buf = this.buf;
        let t = this.t;
        const end = this.base + this.len;
        while (Math.floor(t) + half < end) {
            const i0 = Math.floor(t);
            const c = i0 - this.base; /* buf index of input sample i0 */
            const pf = (t - i0) * PHASES;
            let acc = 0;
            /* left: samples i0, i0-1, ...: distance frac + m */
            let j = Math.floor(pf);
            let f = pf - j;
            for (let m = 0; m < half; m++, j += PHASES)
                acc += buf[c - m] * (tab[j] + (tab[j + 1] - tab[j]) * f);
            /* right: samples i0+1, ...: distance m - frac */
            const q = PHASES - pf;
            j = Math.floor(q);
            f = q - j;
            for (let m = 1; m <= half; m++, j += PHASES)
                acc += buf[c + m] * (tab[j] + (tab[j + 1] - tab[j]) * f);
            this.emit(acc);
            t += this.ratio;
        }
        this.t = t;
        const drop = Math.floor(t) - half + 1 - this.base;
        if (drop > 0) {
            buf.copyWithin(0, drop, this.len);
            this.len -= drop;
            this.base += drop;
        }
    }

    emit(v) {
        const s = v < -1 ? -1 : v > 1 ? 1 : v;
        this.chunk[this.fill++] = s < 0 ? Math.round(s * 32768) : Math.round(s * 32767);
        if (this.fill === this.chunk.length)
            this.post();
    }

    post() {
        if (this.fill === 0)
            return;
        const out = this.chunk.slice(0, this.fill);
        this.fill = 0;
        this.port.postMessage({ type: "pcm", samples: out.buffer }, [out.buffer]);
    }

    process(inputs) {
        const input = inputs[0];
        if (input && input.length > 0) {
            const n = input[0].length;
            const mono = input.length === 1 ? input[0] : new Float32Array(n);
            if (input.length > 1) {
                for (let c = 0; c < input.length; c++)
                    for (let i = 0; i < n; i++)
                        mono[i] += input[c][i] / input.length;
            }
            if (this.ratio === 1) {
                for (let i = 0; i < n; i++)
                    this.emit(mono[i]);
            } else {
                this.append(mono);
                this.resample();
            }
        }
        return this.running;
    }
}

registerProcessor("pcm16-recorder", Pcm16Recorder);
