"""Valid calls: text and evaluation (tokenizers, metrics, n-grams, data, interview, zero-shot, probes)."""
from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import torch

from tests.fuzz import fixtures as F
from tests.fuzz.call import method

Y_TRUE = [0, 1, 1, 0, 1, 0]
Y_PRED = [0, 1, 0, 0, 1, 1]
SCORES = [0.1, 0.8, 0.6, 0.3, 0.7, 0.4]
ZH = "我们喜欢学习"


def _resource(name: str) -> str:
    import llmlab

    return str(Path(llmlab.__file__).parent / "resources" / name)


def _speed_report():
    from llmlab.metrics.speed import SpeedReport

    return SpeedReport(ttft_s=0.1, latency_median_s=0.01, latency_p90_s=0.02, tokens_per_s=100.0, n_tokens=10,
                       peak_memory_mib=100.0)


def _bpe_fields():
    from llmlab.tokenization.bpe import GPT2_PATTERN, train_bpe

    merges, vocab = train_bpe(F.BPE_TEXT, 262, special_tokens=["<|endoftext|>"])
    return dict(merges=merges, vocab=vocab, special_tokens={"<|endoftext|>": max(vocab)}, pattern=GPT2_PATTERN,
                cache_size=100)


def _dictionary_fields():
    d = F.dictionary()
    return dict(freq=dict(d.freq), total=d.total, max_len=d.max_len)


def _hmm_fields():
    h = F.hmm()
    return dict(start=dict(h.start), trans={k: dict(v) for k, v in h.trans.items()},
                emit={k: dict(v) for k, v in h.emit.items()})


def _route():
    from llmlab.tokenization.chinese import best_route, build_dag

    d = F.dictionary()
    return best_route(ZH, build_dag(ZH, d), d)


def _dag():
    from llmlab.tokenization.chinese import build_dag

    return build_dag(ZH, F.dictionary())


def _question_fields():
    import dataclasses

    q = F.question()
    return {f.name: getattr(q, f.name) for f in dataclasses.fields(q)}


def _mock():
    from llmlab.interview import MockInterview

    return MockInterview(n=2, minutes=5.0, lang="en", seed=1)


def _topics(lang="en"):
    from llmlab.data import topic_set

    return topic_set(lang)[:8] + topic_set(lang)[40:48]


def _probe_data():
    X = F.randn(6, 3)
    y = torch.tensor([0, 1, 2, 0, 1, 2])
    return X, y


def _model(module: str):
    import importlib

    return importlib.import_module(module)


VALID = {
    # ------------------------------------------------------------------------- tokenization.bpe
    "llmlab.tokenization.bpe.bytes_to_unicode": lambda: {},
    "llmlab.tokenization.bpe.unicode_to_bytes": lambda: dict(token="Ġthe"),
    "llmlab.tokenization.bpe.pretokenize": lambda: dict(text="Hello world's 123", pattern=r"\w+|\s+"),
    "llmlab.tokenization.bpe.merge_pair": lambda: dict(ids=[1, 2, 1, 2, 3], pair=(1, 2), new_id=256),
    "llmlab.tokenization.bpe.pair_counts": lambda: dict(words=[[1, 2, 3], [1, 2]], freqs=[2, 1]),
    "llmlab.tokenization.bpe.pair_count_change": lambda: dict(old=[1, 2, 3], new=[256, 3], freq=2, into=Counter()),
    "llmlab.tokenization.bpe.apply_merges": lambda: dict(ids=[1, 2, 3], ranks={(1, 2): 0}, merged={(1, 2): 256}),
    "llmlab.tokenization.bpe.train_bpe": lambda: dict(text=F.BPE_TEXT, vocab_size=262, special_tokens=["<|endoftext|>"],
                                                      pattern=r" ?\w+|\s+"),
    "llmlab.tokenization.bpe.train_bpe_naive": lambda: dict(text=F.BPE_TEXT, vocab_size=262,
                                                            special_tokens=["<|endoftext|>"], pattern=r" ?\w+|\s+"),
    "llmlab.tokenization.bpe.ByteBPE": _bpe_fields,
    "llmlab.tokenization.bpe.ByteBPE.train": lambda: method(_model("llmlab.tokenization.bpe").ByteBPE, "train",
                                                            text=F.BPE_TEXT, vocab_size=262,
                                                            special_tokens=["<|endoftext|>"]),
    "llmlab.tokenization.bpe.ByteBPE.encode": lambda: method(F.bpe(), "encode", text="lower newest<|endoftext|>",
                                                             allowed_special="all"),
    "llmlab.tokenization.bpe.ByteBPE.decode": lambda: method(F.bpe(), "decode", ids=[108, 111, 256, 261]),
    # ------------------------------------------------------------------- tokenization.smollm2
    "llmlab.tokenization.smollm2.gguf_tokenizer_fields": lambda: dict(path=F.gguf_path()),
    "llmlab.tokenization.smollm2.load_smollm2_tokenizer": lambda: dict(path=F.gguf_path()),
    "llmlab.tokenization.smollm2.chat_template": lambda: dict(messages=[{"role": "user", "content": "hi"}],
                                                          add_generation_prompt=True),
    # --------------------------------------------------------------------- tokenization.chinese
    "llmlab.tokenization.chinese.Dictionary": _dictionary_fields,
    "llmlab.tokenization.chinese.Dictionary.from_words": lambda: method(
        _model("llmlab.tokenization.chinese").Dictionary, "from_words", words=[("我们", 5), ("喜欢", 3)]),
    "llmlab.tokenization.chinese.jieba_dict_path": lambda: {},
    "llmlab.tokenization.chinese.load_dictionary": lambda: dict(path=str(F.jieba_dict_file())),
    "llmlab.tokenization.chinese.forward_max_match": lambda: dict(text=ZH, dictionary=F.dictionary(), max_len=2),
    "llmlab.tokenization.chinese.backward_max_match": lambda: dict(text=ZH, dictionary=F.dictionary(), max_len=2),
    "llmlab.tokenization.chinese.bidirectional_max_match": lambda: dict(text=ZH, dictionary=F.dictionary(), max_len=2),
    "llmlab.tokenization.chinese.build_dag": lambda: dict(sentence=ZH, dictionary=F.dictionary()),
    "llmlab.tokenization.chinese.best_route": lambda: dict(sentence=ZH, dag=_dag(), dictionary=F.dictionary()),
    "llmlab.tokenization.chinese.route_words": lambda: dict(sentence=ZH, route=_route()),
    "llmlab.tokenization.chinese.HMM": _hmm_fields,
    "llmlab.tokenization.chinese.viterbi": lambda: dict(chars="我们喜欢", hmm=F.hmm()),
    "llmlab.tokenization.chinese.tags_to_words": lambda: dict(chars="我们喜欢", tags=["B", "E", "B", "E"]),
    "llmlab.tokenization.chinese.hmm_cut": lambda: dict(text=ZH + " NLP", hmm=F.hmm()),
    "llmlab.tokenization.chinese.cut": lambda: dict(text=ZH + " NLP", dictionary=F.dictionary(), hmm=F.hmm()),
    "llmlab.tokenization.chinese.word_spans": lambda: dict(words=["我们", "喜欢"]),
    "llmlab.tokenization.chinese.SegmentationScores": lambda: dict(precision=0.5, recall=0.5, f1=0.5, oov_recall=0.0),
    "llmlab.tokenization.chinese.evaluate": lambda: dict(gold=[["我们", "喜欢"]], predicted=[["我们", "喜", "欢"]],
                                                         dictionary=F.dictionary()),
    # -------------------------------------------------------------------- tokenization.wordpiece
    "llmlab.tokenization.wordpiece.clean_text": lambda: dict(text="hello\tworld"),
    "llmlab.tokenization.wordpiece.pad_cjk": lambda: dict(text="我爱NLP"),
    "llmlab.tokenization.wordpiece.strip_accents": lambda: dict(text="Café naïve"),
    "llmlab.tokenization.wordpiece.basic_tokenize": lambda: dict(text="Hello, World!", do_lower_case=True),
    "llmlab.tokenization.wordpiece.wordpiece": lambda: dict(word="unaffable", vocab=F.wordpiece_vocab(), unk="[UNK]",
                                                            max_chars=100),
    "llmlab.tokenization.wordpiece.WordPiece": lambda: dict(vocab=F.wordpiece_vocab(), do_lower_case=True,
                                                            max_chars=100),
    "llmlab.tokenization.wordpiece.WordPiece.encode": lambda: method(F.wordpiece(), "encode", text="hello world",
                                                                     add_special_tokens=True),
    "llmlab.tokenization.wordpiece.WordPiece.decode": lambda: method(F.wordpiece(), "decode", ids=[2, 5, 6, 3],
                                                                     skip_special_tokens=True),
    "llmlab.tokenization.wordpiece.load_vocab": lambda: dict(path=str(F.bert_dir() / "vocab.txt")),
    "llmlab.tokenization.wordpiece.load_minilm_tokenizer": lambda: dict(path=str(F.bert_dir() / "vocab.txt")),
    # ---------------------------------------------------------------------- metrics.classification
    "llmlab.metrics.classification.UndefinedMetricWarning": lambda: {},
    "llmlab.metrics.classification.accuracy": lambda: dict(y_true=Y_TRUE, y_pred=Y_PRED),
    "llmlab.metrics.classification.confusion_matrix": lambda: dict(y_true=Y_TRUE, y_pred=Y_PRED, labels=[0, 1]),
    "llmlab.metrics.classification.precision_recall_f1": lambda: dict(y_true=Y_TRUE, y_pred=Y_PRED, average="binary",
                                                                      pos_label=1, labels=[0, 1], zero_division=0.0),
    "llmlab.metrics.classification.roc_curve": lambda: dict(y_true=Y_TRUE, scores=SCORES, pos_label=1,
                                                            drop_intermediate=True),
    "llmlab.metrics.classification.roc_auc": lambda: dict(y_true=Y_TRUE, scores=SCORES, pos_label=1),
    "llmlab.metrics.classification.precision_recall_curve": lambda: dict(y_true=Y_TRUE, scores=SCORES, pos_label=1),
    "llmlab.metrics.classification.average_precision": lambda: dict(y_true=Y_TRUE, scores=SCORES, pos_label=1),
    "llmlab.metrics.classification.roc_auc_ovr": lambda: dict(
        y_true=[0, 1, 2, 0, 1, 2], scores=F.probs(6, 3).tolist(), labels=[0, 1, 2], average="weighted"),
    # ---------------------------------------------------------------------------------- metrics.lm
    "llmlab.metrics.lm.sequence_log_prob": lambda: dict(log_probs=torch.log_softmax(F.randn(5, 8), -1),
                                                        targets=F.ids(5, vocab=8)),
    "llmlab.metrics.lm.cross_entropy": lambda: dict(log_probs=torch.log_softmax(F.randn(5, 8), -1),
                                                    targets=F.ids(5, vocab=8)),
    "llmlab.metrics.lm.perplexity": lambda: dict(log_probs=torch.log_softmax(F.randn(5, 8), -1),
                                                 targets=F.ids(5, vocab=8)),
    "llmlab.metrics.lm.model_perplexity": lambda: dict(model=F.decoder(), ids=F.ids(3, 6), batch_size=2),
    "llmlab.metrics.lm.strided_windows": lambda: dict(n_tokens=10, window=4, stride=2),
    "llmlab.metrics.lm.strided_nll": lambda: dict(model=F.decoder(), ids=F.ids(12), window=4, stride=2, progress=False),
    "llmlab.metrics.lm.strided_perplexity": lambda: dict(model=F.decoder(), ids=F.ids(12), window=4, stride=2,
                                                         progress=False),
    # ------------------------------------------------------------------------------- metrics.speed
    "llmlab.metrics.speed.percentile": lambda: dict(values=[1.0, 2.0, 3.0, 4.0], q=90.0),
    "llmlab.metrics.speed.peak_rss_mib": lambda: {},
    "llmlab.metrics.speed.SpeedReport": lambda: dict(ttft_s=0.1, latency_median_s=0.01, latency_p90_s=0.02,
                                                     tokens_per_s=100.0, n_tokens=10, peak_memory_mib=100.0),
    "llmlab.metrics.speed.measure_generation": lambda: dict(generate=lambda: iter([1, 2, 3]), warmup=1, repeats=2,
                                                            device="cpu", clock=time.perf_counter),
    "llmlab.metrics.speed.speed_table": lambda: dict(reports={"a": _speed_report()}),
    "llmlab.metrics.speed.decode_bytes_per_token": lambda: dict(weight_bytes=1000, n_layers=2, n_kv_heads=2, head_dim=4,
                                                                context_len=16, kv_bytes_per_element=4),
    "llmlab.metrics.speed.bandwidth_bound": lambda: dict(bytes_per_token=1e6, bandwidth=1e9),
    "llmlab.metrics.speed.measure_bandwidth": lambda: dict(n_bytes=2 ** 16, repeats=2, device="cpu"),
    # -------------------------------------------------------------------------------- metrics.text
    "llmlab.metrics.text.tokenize_13a": lambda: dict(line="Hello, world!"),
    "llmlab.metrics.text.is_chinese_char": lambda: dict(char="中"),
    "llmlab.metrics.text.tokenize_zh": lambda: dict(line="我们 like it."),
    "llmlab.metrics.text.BleuScore": lambda: dict(score=50.0, precisions=[80.0, 60.0, 40.0, 20.0], bp=1.0, hyp_len=5,
                                                  ref_len=5, counts=[4, 3, 2, 1], totals=[5, 4, 3, 2]),
    "llmlab.metrics.text.ngram_counts": lambda: dict(tokens=["a", "b", "c"], max_order=2),
    "llmlab.metrics.text.modified_precision": lambda: dict(hyp=["a", "b"], refs=[["a", "b"]], n=1),
    "llmlab.metrics.text.brevity_penalty": lambda: dict(hyp_lens=[3, 4], ref_lens=[[3], [5]]),
    "llmlab.metrics.text.bleu_from_stats": lambda: dict(hyp_len=10, ref_len=11, correct=[8, 5, 3, 1],
                                                        total=[10, 9, 8, 7], smooth="exp", effective_order=False),
    "llmlab.metrics.text.corpus_bleu": lambda: dict(hypotheses=["the cat sat"], references=["the cat sat down"],
                                                    tokenize="13a", smooth="exp", effective_order=False),
    "llmlab.metrics.text.sentence_bleu": lambda: dict(hypothesis="the cat sat", references=["the cat sat down"],
                                                      tokenize="13a", smooth="exp", effective_order=True),
    "llmlab.metrics.text.RougeScore": lambda: dict(precision=0.5, recall=0.5, fmeasure=0.5),
    "llmlab.metrics.text.tokenize_rouge": lambda: dict(text="Hello World"),
    "llmlab.metrics.text.rouge_n": lambda: dict(target="the cat sat", prediction="the cat", n=1),
    "llmlab.metrics.text.lcs_length": lambda: dict(a=["a", "b"], b=["b"]),
    "llmlab.metrics.text.rouge_l": lambda: dict(target="the cat sat", prediction="the cat"),
    # -------------------------------------------------------------------------------------- ngram
    "llmlab.ngram.count_ngrams": lambda: dict(tokens=F.text_tokens(), n=2),
    "llmlab.ngram.context_counts": lambda: dict(ngram_counts=F.ngram_counts()),
    "llmlab.ngram.next_token_probs": lambda: dict(ngram_counts=F.ngram_counts(), context=[116], k=1.0, vocab_size=256),
    "llmlab.ngram.finetune_counts": lambda: dict(base=F.ngram_counts(), domain=Counter({(1, 2): 3}), weight=2.0),
    "llmlab.ngram.NGramLM": lambda: dict(n=2, k=1.0, vocab_size=256),
    "llmlab.ngram.NGramLM.fit": lambda: method(_model("llmlab.ngram").NGramLM(n=2), "fit", tokens=F.text_tokens()),
    "llmlab.ngram.NGramLM.probs": lambda: method(F.ngram_lm(), "probs", context=[116]),
    "llmlab.ngram.NGramLM.perplexity": lambda: method(F.ngram_lm(), "perplexity", tokens=F.text_tokens(20)),
    "llmlab.ngram.NGramLM.generate": lambda: method(F.ngram_lm(), "generate", prompt=[116], max_new_tokens=5,
                                                    temperature=1.0, generator=torch.Generator().manual_seed(0)),
    # --------------------------------------------------------------------------------------- data
    "llmlab.data.pydoc_topics": lambda: {},
    "llmlab.data.pydoc_text": lambda: dict(split="val"),
    "llmlab.data.pydoc_bytes": lambda: dict(split="val"),
    "llmlab.data.chinese_sentences": lambda: dict(path=str(F.fortunes_file()), min_chars=4),
    "llmlab.data.chinese_gold": lambda: dict(path=_resource("zh_gold.txt")),
    "llmlab.data.TopicItem": lambda: dict(text="hello", label="sports", lang="en"),
    "llmlab.data.topic_set": lambda: dict(lang="en", path=_resource("topics.tsv")),
    "llmlab.data.train_test_split_items": lambda: dict(items=_topics(), test_fraction=0.25, seed=0),
    "llmlab.data.glossary": lambda: dict(split="val", path=_resource("glossary.txt")),
    # ---------------------------------------------------------------------------------- interview
    "llmlab.interview.Question": _question_fields,
    "llmlab.interview.Question.text": lambda: method(F.question(), "text", lang="zh"),
    "llmlab.interview.Verdict": lambda: dict(correct=True, message="ok"),
    "llmlab.interview.set_language": lambda: dict(lang="en"),
    "llmlab.interview.validate": lambda: dict(item=F.question_item()),
    "llmlab.interview.withhold": lambda: dict(items=[F.question_item()]),
    "llmlab.interview.load_bank": lambda: dict(folder=_resource("")),
    "llmlab.interview.question": lambda: dict(qid="lm-001"),
    "llmlab.interview.select": lambda: dict(topic="lm_basics", difficulty=1, kind="numeric"),
    "llmlab.interview.evaluate": lambda: dict(q=F.question(), value=12.18, lang="en"),
    "llmlab.interview.drill_check": lambda: dict(q=F.question("lm-007")),
    "llmlab.interview.answer": lambda: dict(qid="lm-001", value=12.18, lang="en"),
    "llmlab.interview.ask": lambda: dict(qid="lm-001", lang="en"),
    "llmlab.interview.MockInterview": lambda: dict(n=3, minutes=5.0, lang="en", seed=1, topics=["lm_basics"],
                                                   difficulty=1),
    "llmlab.interview.MockInterview.submit": lambda: method(_mock(), "submit", value="B"),
    "llmlab.interview.quiz": lambda: dict(lang="en", topic="lm_basics", difficulty=1),
    "llmlab.interview.mock_interview": lambda: dict(n=3, minutes=5.0, lang="en", seed=1, topics=["lm_basics"]),
    "llmlab.interview.drill_index": lambda: {},
    # --------------------------------------------------------------------------------- zero_shot
    "llmlab.evaluation.zero_shot.continuation_log_prob": lambda: dict(model=F.decoder(), prompt_ids=[1, 2, 3], cont_ids=[4, 5]),
    "llmlab.evaluation.zero_shot.label_log_probs": lambda: dict(model=F.decoder(), prompts=[[1, 2, 3], [4, 5]],
                                                     labels=[[6], [7, 8]], batch_size=2, pad_id=0, progress=False),
    "llmlab.evaluation.zero_shot.calibrate": lambda: dict(scores=F.randn(3, 2), content_free=F.randn(2, seed=1)),
    # ------------------------------------------------------------------------------------- probe
    "llmlab.evaluation.probe.logistic_loss": lambda: dict(zip(("X", "y"), _probe_data()), W=F.randn(3, 3, seed=1),
                                               b=torch.zeros(3), l2=0.01),
    "llmlab.evaluation.probe.fit_logistic_regression": lambda: dict(zip(("X", "y"), _probe_data()), n_classes=3, l2=1e-3, steps=5),
    "llmlab.evaluation.probe.predict_proba": lambda: dict(X=F.randn(6, 3), W=F.randn(3, 3, seed=1), b=torch.zeros(3)),
    # ---------------------------------------------------------------------------------- plotting
    "llmlab.plotting.find_cjk_font": lambda: {},
    "llmlab.plotting.use_cjk_font": lambda: {},
}

SKIP: dict[str, str] = {}
