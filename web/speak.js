/*
 * speak.js - the Speak panel: text to speech through POST /v1/audio/speech
 * (voice from GET /v1/audio/voices, a format, play and download), and
 * "Read aloud" for the transcript shown. The audio is fetched whole (a Blob)
 * so the same bytes play and download.
 */
import { api, apiJson } from "./api.js";

const $ = (id) => document.getElementById(id);
const PLAYABLE = new Set(["mp3", "opus", "aac", "flac", "wav"]); /* pcm is raw: download only */
let blobUrl = null;

function status(text, isError = false) {
    $("speak-status").textContent = text;
    $("speak-status").classList.toggle("error", isError);
}

async function loadVoices() {
    const select = $("speak-voice");
    try {
        const r = await apiJson("/v1/audio/voices");
        select.replaceChildren();
        for (const v of r.data || []) {
            const names = (v.openai_names || []).join(", ");
            const opt = document.createElement("option");
            opt.value = v.id;
            opt.textContent = `${v.id} (${v.language}${names ? `; ${names}` : ""})`;
            opt.selected = !!v.default;
            select.append(opt);
        }
    } catch (err) {
        status(`Could not load the voices: ${err.message}`, true);
    }
}

async function speak(e) {
    if (e)
        e.preventDefault();
    const text = $("speak-text").value.trim();
    if (!text) {
        status("Type something to speak.", true);
        return;
    }
    const format = $("speak-format").value;
    const button = $("speak-submit");
    button.disabled = true;
    status("Speaking…");
    try {
        const res = await api("/v1/audio/speech", {
            method: "POST",
            headers: { "Content-Type": "application/json" },
            body: JSON.stringify({ model: "tts-1", input: text, voice: $("speak-voice").value,
                response_format: format }),
        });
        const blob = await res.blob();
        if (blobUrl)
            URL.revokeObjectURL(blobUrl);
        blobUrl = URL.createObjectURL(blob);
        const link = $("speak-download");
        link.href = blobUrl;
        link.download = `speech.${format}`;
        link.hidden = false;
        const player = $("speak-player");
        player.hidden = !PLAYABLE.has(format);
        if (PLAYABLE.has(format)) {
            player.src = blobUrl;
            player.play().catch(() => {});
        }
        status(`${(blob.size / 1024).toFixed(0)} KB of ${format}${PLAYABLE.has(format) ? "" : " (raw 24 kHz 16-bit: download only)"}.`);
    } catch (err) {
        status(err.message, true);
    } finally {
        button.disabled = false;
    }
}

/* Puts the text in the panel (the API's limit: 4096 characters) and speaks it. */
export function readAloud(text) {
    $("speak-text").value = text.slice(0, 4096);
    $("speak").scrollIntoView({ block: "nearest" });
    speak();
}

export function initSpeak() {
    $("speak-form").addEventListener("submit", speak);
    loadVoices();
}
