"""Evaluation metrics, each exact against the standard tool (tested):

``lm``: log-likelihood, cross-entropy, perplexity, and sliding-window (strided) perplexity of a long
text (transformers' documented method); ``classification``: accuracy, precision/recall/F1 (binary,
micro, macro, weighted), confusion matrix, ROC and PR curves, ROC-AUC, one-vs-rest multi-class
ROC-AUC, average precision (scikit-learn); ``text``: corpus BLEU with 13a and zh tokenisation, its
clipped n-gram precision and brevity penalty (sacrebleu), ROUGE-1/2/L (rouge-score); ``speed``:
time to first token, per-token latency (median, p90), tokens/s and peak memory of a generation run
(percentiles as numpy's).
"""
