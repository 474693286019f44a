/*
 * live.js - the "Record" session: microphone -> AudioWorklet (recorder-worklet.js,
 * 16 kHz Int16 PCM chunks) -> WebSocket /v1/realtime, and the server's JSON
 * messages back to callbacks. Protocol: first a text frame with the config
 * ({language, task, sample_rate: 16000, format: "pcm_s16le"}), then binary
 * audio; {"type":"end"} asks for the rest. The server answers "ready",
 * "segments" (items {id,start,end,text,final}), "error" and "done".
 * Rendering is app.js's job; this file only moves audio and messages.
 */

import { wsUrl } from "./api.js";

const SAMPLE_RATE = 16000;
const CHUNK_MS = 100;
const MAX_QUEUED_CHUNKS = 300; /* 30 s of audio waiting for "ready" */
const CONNECT_TIMEOUT_MS = 10000;
const FINISH_TIMEOUT_MS = 60000;

export function liveSupported() {
    if (!window.isSecureContext)
        return "the microphone needs a secure page (https, or http://localhost)";
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia)
        return "this browser has no microphone access";
    if (!window.AudioWorkletNode)
        return "this browser has no AudioWorklet";
    return "";
}

/*
 * handlers: onState(state, detail) with state connecting|listening|finishing|
 * closed; onSegments(array); onDone(message); onError(text).
 */
export class LiveSession {
    constructor(handlers) {
        this.h = handlers;
        this.ws = null;
        this.ctx = null;
        this.stream = null;
        this.node = null;
        this.queue = [];
        this.ready = false;
        this.finished = false; /* "done" arrived, or the session failed */
        this.stopping = false;
        this.bytesSent = 0;
    }

    async start(config) {
        this.h.onState("connecting");
        try {
            this.stream = await navigator.mediaDevices.getUserMedia({
                /*
                 * Raw microphone: the browser's echo canceller, noise suppressor and
                 * gain control reshape speech that Whisper handles better untouched
                 * (and the page plays nothing while it records).
                 */
                audio: {
                    channelCount: 1, echoCancellation: false, noiseSuppression: false,
                    autoGainControl: false,
                },
            });
        } catch (e) {
            throw new Error(`no microphone: ${e.message || e.name}`);
        }
        try {
            await this.connect(config);
            await this.startAudio();
        } catch (e) {
            this.finished = true; /* the caller reports e; onClose must not add a second error */
            this.cleanupAudio();
            this.closeSocket();
            throw e;
        }
    }

    connect(config) {
        return new Promise((resolve, reject) => {
            const ws = new WebSocket(wsUrl("/v1/realtime"));
            ws.binaryType = "arraybuffer";
            this.ws = ws;
            let opened = false;
            const timer = setTimeout(() => {
                if (!opened) {
                    ws.close();
                    reject(new Error("the live connection timed out"));
                }
            }, CONNECT_TIMEOUT_MS);
            ws.onopen = () => {
                opened = true;
                clearTimeout(timer);
                ws.send(JSON.stringify({
                    ...config,
                    sample_rate: SAMPLE_RATE,
                    format: "pcm_s16le",
                }));
                resolve();
            };
            ws.onmessage = (e) => this.onMessage(e);
            ws.onclose = (e) => {
                clearTimeout(timer);
                if (!opened) {
                    reject(new Error("the server refused the live connection (is /v1/realtime "
                        + "available, and is the API key right?)"));
                    return;
                }
                this.onClose(e);
            };
        });
    }

    async startAudio() {
        this.ctx = new AudioContext();
        await this.ctx.audioWorklet.addModule("recorder-worklet.js");
        const src = this.ctx.createMediaStreamSource(this.stream);
        this.node = new AudioWorkletNode(this.ctx, "pcm16-recorder", {
            numberOfInputs: 1,
            numberOfOutputs: 1,
            processorOptions: { targetRate: SAMPLE_RATE, chunkMs: CHUNK_MS },
        });
        this.node.port.onmessage = (e) => this.onChunk(e.data);
        /* a silent path to the destination keeps the graph pulling in every browser */
        const mute = this.ctx.createGain();
        mute.gain.value = 0;
        src.connect(this.node).connect(mute).connect(this.ctx.destination);
        if (this.ctx.state === "suspended")
            await this.ctx.resume();
        this.h.onState(this.ready ? "listening" : "connecting");
    }

    onChunk(msg) {
        if (msg.type === "flushed") {
            if (this.flushed)
                this.flushed();
            return;
        }
        if (msg.type !== "pcm")
            return;
        if (!this.ready) {
            if (this.queue.length < MAX_QUEUED_CHUNKS)
                this.queue.push(msg.samples);
            return;
        }
        this.send(msg.samples);
    }

    send(buf) {
        if (this.ws && this.ws.readyState === WebSocket.OPEN) {
            this.ws.send(buf);
            this.bytesSent += buf.byteLength;
        }
    }

    onMessage(e) {
        if (typeof e.data !== "string")
            return;
        let msg;
        try {
            msg = JSON.parse(e.data);
        } catch {
            return;
        }
        switch (msg.type) {
        case "ready":
            this.ready = true;
            for (const buf of this.queue)
                this.send(buf);
            this.queue = [];
            if (!this.stopping)
                this.h.onState("listening");
            break;
        case "segments":
            if (Array.isArray(msg.segments))
                this.h.onSegments(msg.segments);
            break;
        case "error":
            this.h.onError(msg.message || msg.error || "the server reported an error");
            break;
        case "done":
            this.finished = true;
            this.h.onDone(msg);
            if (this.finish)
                this.finish();
            this.closeSocket();
            break;
        default:
            break;
        }
    }

    onClose(e) {
        this.cleanupAudio();
        if (!this.finished && !this.stopping)
            this.h.onError(`the live connection closed${e.reason ? `: ${e.reason}` : ` (code ${e.code})`}`);
        this.finished = true;
        if (this.finish)
            this.finish();
        this.h.onState("closed");
    }

    /* Stops the microphone, sends what is left and waits for "done". */
    async stop() {
        if (this.stopping)
            return;
        this.stopping = true;
        this.h.onState("finishing");
        if (this.node) {
            await new Promise((resolve) => {
                this.flushed = resolve;
                this.node.port.postMessage("flush");
                setTimeout(resolve, 500);
            });
        }
        this.cleanupAudio();
        for (const buf of this.queue)
            this.send(buf);
        this.queue = [];
        if (this.ws && this.ws.readyState === WebSocket.OPEN && !this.finished) {
            this.ws.send(JSON.stringify({ type: "end" }));
            await new Promise((resolve) => {
                this.finish = resolve;
                setTimeout(resolve, FINISH_TIMEOUT_MS);
            });
        }
        this.closeSocket();
        this.h.onState("closed");
    }

    cleanupAudio() {
        if (this.node) {
            this.node.port.postMessage("stop");
            this.node.disconnect();
            this.node = null;
        }
        if (this.stream) {
            for (const t of this.stream.getTracks())
                t.stop();
            this.stream = null;
        }
        if (this.ctx) {
            this.ctx.close().catch(() => {});
            this.ctx = null;
        }
    }

    closeSocket() {
        if (this.ws && this.ws.readyState <= WebSocket.OPEN)
            this.ws.close(1000, "client done");
    }
}
