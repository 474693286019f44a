/*
 * recorder-worklet.js - AudioWorklet processor for the "Record" button: mixes
 * the microphone to mono, brings it from the context's rate (44.1/48 kHz) to
 * 16 kHz and posts little-endian 16-bit PCM chunks of ~100 ms to app.js, which
 * sends them over the WebSocket. It does no networking and no VAD; the server
 * decides what is speech. Messages in: "flush" (post what is buffered, then
 * {type:"flushed"}), "stop" (end the processor).
 */

const TARGET_RATE = 16000;

class Pcm16Recorder extends AudioWorkletProcessor {
    constructor(options) {
        super();
        const opts = (options && options.processorOptions) || {};
        this.outRate = opts.targetRate || TARGET_RATE;
        this.ratio = sampleRate / this.outRate; /* input samples per output sample */
        const chunkMs = opts.chunkMs || 100;
        this.chunk = new Int16Array(Math.round((this.outRate * chunkMs) / 1000));
        this.fill = 0;
        /* downsampling: box average over each output step (a cheap anti-alias filter) */
        this.acc = 0;
        this.accN = 0;
        this.pos = 0;
        /* upsampling (inputs below 16 kHz): linear interpolation */
        this.prev = 0;
        this.t = 0;
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
            const nch = input.length;
            for (let i = 0; i < n; i++) {
                let x = 0;
                for (let c = 0; c < nch; c++)
                    x += input[c][i];
                x /= nch;
                if (this.ratio >= 1) {
                    this.acc += x;
                    this.accN++;
                    this.pos += 1;
                    if (this.pos >= this.ratio) {
                        this.pos -= this.ratio;
                        this.emit(this.acc / this.accN);
                        this.acc = 0;
                        this.accN = 0;
                    }
                } else {
                    /* emit every output sample that falls between prev and x */
                    while (this.t <= 1) {
                        this.emit(this.prev + (x - this.prev) * this.t);
                        this.t += this.ratio;
                    }
                    this.t -= 1;
                    this.prev = x;
                }
            }
        }
        return this.running;
    }
}

registerProcessor("pcm16-recorder", Pcm16Recorder);
