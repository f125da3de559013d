"""Every diffusers Cosmos adapter, end to end on tiny random-weight pipelines."""

from __future__ import annotations

import sys

import pytest
import torch

from dfbench.config import load_protocol
from dfbench.errors import DfbenchError
from dfbench.evaluate import Evaluator
from dfbench.features import load_feature_space
from dfbench.registry import get_dataset_class, get_model_class, get_model_spec

pytest.importorskip("diffusers", reason='diffusers is not installed (pip install "dfbench[cosmos]")')
from tests.cosmos.tiny_pipelines import StandInChecker, prompt_embeds, small_variant, tiny_pipeline  # noqa: E402

DIFFUSERS_MODELS = ["cosmos1-7b-v2w", "cosmos1-14b-v2w", "cosmos-predict2-2b", "cosmos-predict2-14b", "cosmos-predict2.5-2b"]


@pytest.fixture(scope="module")
def tiny():
    return load_feature_space("tiny")


@pytest.fixture(scope="module")
def clips(tiny):
    dataset = get_dataset_class("synthetic")(frame_size=tiny.frame_size)
    return [dataset.load(sid) for sid in dataset.sample_ids()[:2]]


def _model(name, tiny, checker=None, **options):
    spec = get_model_spec(name)
    checker = checker or StandInChecker()
    pipe = tiny_pipeline(spec.options["pipeline"], checker)
    return small_variant(name)(tiny, pipeline=pipe, prompt_embeds=prompt_embeds(), safety_checker=checker,
                               num_inference_steps=2, **options)


def _forecast(model, tiny, clips, samples):
    evaluator = Evaluator(model, tiny, {}, load_protocol(), num_samples=samples, horizons=["mid"])
    encoded = [evaluator.encode(c) for c in clips]
    (window,) = evaluator.windows()
    return evaluator.forecast(encoded, window)


@pytest.mark.parametrize("name", DIFFUSERS_MODELS)
def test_every_diffusers_adapter_forecasts_through_the_harness(name, tiny, clips):
    checker = StandInChecker()
    scored = _forecast(_model(name, tiny, checker), tiny, clips, samples=2)
    # two clips x two square crops, three steps of 8 x 8 tokens
    assert set(scored) == {"best", "mean"} and scored["best"].shape == (4, 3, 64, tiny.dim)
    assert torch.isfinite(scored["mean"]).all()
    # The guardrail saw every generated video (2.5's pipeline calls only the official class).
    assert checker.videos_checked == (0 if name == "cosmos-predict2.5-2b" else 4)


def test_samples_do_not_depend_on_the_batch_or_the_call_size(tiny, clips):
    name = "cosmos-predict2-2b"
    together = _forecast(_model(name, tiny), tiny, clips, samples=2)["best"]
    alone = _forecast(_model(name, tiny, sample_batch=1), tiny, clips[1:], samples=2)["best"]
    torch.testing.assert_close(together[2:], alone, rtol=1e-4, atol=1e-4)


def test_nvidia_weights_need_the_guardrail_or_an_explicit_acceptance(tiny, monkeypatch):
    monkeypatch.setitem(sys.modules, "cosmos_guardrail", None)  # not installed
    cls = get_model_class("cosmos-predict2-2b")
    with pytest.raises(DfbenchError, match="accept_no_guardrail=true"):
        cls(tiny, pipeline=tiny_pipeline("Cosmos2VideoToWorldPipeline"))
    model = cls(tiny, pipeline=tiny_pipeline("Cosmos2VideoToWorldPipeline"), accept_no_guardrail="true",
                prompt_embeds=prompt_embeds())
    assert model.pipeline().safety_checker is model.checker


def test_weights_absent_from_the_cache_name_the_download(tiny, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    with pytest.raises(DfbenchError) as error:
        get_model_class("cosmos-predict2.5-2b")(tiny, safety_checker=StandInChecker())
    message = str(error.value)
    assert "hf download nvidia/Cosmos-Predict2.5-2B --revision diffusers/base/post-trained" in message
    assert "nvidia-open-model-license" in message and "huggingface-cli" not in message


def test_a_saved_pipeline_folder_loads_and_caches_no_text_encoder(tiny, clips, tmp_path, monkeypatch):
    monkeypatch.setenv("DFBENCH_CACHE", str(tmp_path / "cache"))
    folder = tmp_path / "pipe"
    tiny_pipeline("Cosmos2VideoToWorldPipeline").save_pretrained(folder)
    from safetensors.torch import save_file

    positive, negative = prompt_embeds()
    save_file({"prompt": positive, "negative": negative}, str(folder / "prompt_embeds.safetensors"))
    model = small_variant("cosmos-predict2-2b")(tiny, checkpoint=str(folder), safety_checker=StandInChecker(),
                                                num_inference_steps=2)
    scored = _forecast(model, tiny, clips[:1], samples=1)
    assert scored["best"].shape == (2, 3, 64, tiny.dim)
    assert model.pipeline().text_encoder is None


def test_a_pipeline_returning_other_frames_is_one_line(tiny, clips):
    model = _model("cosmos-predict2-2b", tiny)
    pipe = model.pipeline()
    real_call = type(pipe).__call__

    def short_video(self, **kwargs):
        (frames,) = real_call(self, **kwargs)
        return (frames[:, :-1],)

    model._pipe = type("ShortVideo", (type(pipe),), {"__call__": short_video})(**pipe.components)
    with pytest.raises(DfbenchError, match="returned frames .* expected"):
        _forecast(model, tiny, clips[:1], samples=1)


def test_the_fixed_prompt_is_embedded_once_cached_and_the_text_encoder_dropped(tiny, clips, tmp_path, monkeypatch):
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast, T5Config, T5EncoderModel

    monkeypatch.setenv("DFBENCH_CACHE", str(tmp_path))
    words = Tokenizer(models.WordLevel({"<pad>": 0, "</s>": 1, "<unk>": 2}, unk_token="<unk>"))
    words.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=words, pad_token="<pad>", eos_token="</s>", unk_token="<unk>")
    torch.manual_seed(0)
    encoder = T5EncoderModel(T5Config(vocab_size=8, d_model=32, d_kv=8, d_ff=37, num_layers=2, num_heads=4)).eval()
    checker = StandInChecker()
    pipe = tiny_pipeline("Cosmos2VideoToWorldPipeline", checker)
    pipe.register_modules(text_encoder=encoder, tokenizer=tokenizer)
    model = small_variant("cosmos-predict2-2b")(tiny, pipeline=pipe, safety_checker=checker, num_inference_steps=2)
    assert _forecast(model, tiny, clips[:1], samples=1)["best"].shape == (2, 3, 64, tiny.dim)
    assert pipe.text_encoder is None  # freed once the prompt is embedded
    cached = tmp_path / "prompts" / "cosmos-predict2-2b-test.safetensors"
    assert cached.is_file()
    again = small_variant("cosmos-predict2-2b")(tiny, pipeline=tiny_pipeline("Cosmos2VideoToWorldPipeline", checker),
                                                safety_checker=checker)
    again.pipeline()
    torch.testing.assert_close(again._embeds[0], model._embeds[0])  # read back, no text encoder needed
