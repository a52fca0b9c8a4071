"""Evaluation metrics, each exact against the standard tool (tested):

``lm``: log-likelihood, cross-entropy, perplexity; ``classification``: accuracy, precision/recall/F1
(binary, micro, macro, weighted), confusion matrix, ROC and PR curves, ROC-AUC, average precision
(scikit-learn); ``text``: corpus BLEU with 13a and zh tokenisation (sacrebleu), ROUGE-1/2/L
(rouge-score).
"""
