"""Request parameters come from one table (src/pipeline/stt_params.def): the
same set given in OpenAI's field names, in whisper.cpp server's names and
through a stored async job gives the same transcript; every accepted value
is honoured (beam_size up to 16) and every other one refused with a 400
that names the field and its range, never clamped."""
import pytest
import requests

from conftest import assert_openai_error, submit_job, transcribe, wait_job

OPENAI = {"response_format": "verbose_json", "beam_size": "3", "best_of": "2",
          "logprob_threshold": "-0.8", "no_speech_threshold": "0.5",
          "timestamp_granularities[]": "word", "vad_filter": "false",
          "condition_on_previous_text": "true", "max_tokens": "40"}
WHISPER_CPP = {"response_format": "verbose_json", "beam_size": "3", "best_of": "2",
               "logprob_thold": "-0.8", "no_speech_thold": "0.5", "token_timestamps": "true",
               "vad": "false", "no_context": "false", "max_tokens": "40"}


def test_openai_and_whisper_cpp_names_mean_the_same(server, short_wav):
    a = transcribe(server, short_wav, OPENAI)
    b = transcribe(server, short_wav, WHISPER_CPP, endpoint="/inference")
    assert a.status_code == 200 and b.status_code == 200, (a.text, b.text)
    assert a.content == b.content
    assert a.json()["segments"] and "words" in a.json()


def test_a_stored_job_runs_with_the_same_parameters(server, short_wav):
    sync = transcribe(server, short_wav, OPENAI)
    r = submit_job(server, short_wav, OPENAI)
    assert r.status_code == 202, r.text
    job = wait_job(server, r.json()["id"])
    assert job["status"] == "succeeded", job
    # the request is kept as the client gave it, in the table's canonical names
    assert job["request"]["beam_size"] == 3 and job["request"]["vad_filter"] is False
    assert job["request"]["word_timestamps"] is True
    assert job["request"]["logprob_threshold"] == -0.8
    result = requests.get(server.url(f"/v1/jobs/{job['id']}/result"), timeout=10)
    assert result.content == sync.content


@pytest.mark.parametrize("beam", ["8", "16"])
def test_large_beams_are_honoured(server, short_wav, beam):
    r = transcribe(server, short_wav, {"beam_size": beam, "response_format": "json"})
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("endpoint,field,value,words", [
    ("/v1/audio/transcriptions", "beam_size", "17", ["1 to 16", "'17'"]),
    ("/v1/audio/transcriptions", "best_of", "0", ["1 to 16"]),
    ("/v1/audio/transcriptions", "temperature", "1.5", ["0 to 1"]),
    ("/v1/audio/transcriptions", "max_tokens", "500", ["0 to 224"]),
    ("/v1/audio/transcriptions", "vad_threshold", "2", ["0.01 to 1"]),
    ("/v1/audio/transcriptions", "language", "xx", ["'xx'"]),
    ("/v1/jobs", "patience", "9", ["0.1 to 4"]),
    ("/inference", "beam_size", "-5", ["1 to 16"]),
    ("/inference", "no_speech_thold", "3", ["0 to 1"]),
])
def test_out_of_range_is_a_400_naming_the_field(server, short_wav, endpoint, field, value, words):
    if endpoint == "/v1/jobs":
        r = submit_job(server, short_wav, {field: value})
    else:
        r = transcribe(server, short_wav, {field: value}, endpoint=endpoint)
    err = assert_openai_error(r, 400, field)
    assert all(w in err["message"] for w in words), err
