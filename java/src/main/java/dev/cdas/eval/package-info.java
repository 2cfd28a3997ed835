/**
 * Evaluations of a model with and without steering: multiple-choice utility benchmarks scored by
 * log-likelihood as lm-evaluation-harness scores them ({@link dev.cdas.eval.MultipleChoiceScorer}
 * on items from {@link dev.cdas.eval.MultipleChoiceData}: MMLU, TruthfulQA MC1 and MC2), and the
 * phrase matcher that decides whether a reply refuses ({@link dev.cdas.eval.RefusalMatcher}).
 * Nothing here prints; long calls report to a {@link dev.cdas.train.ProgressListener}.
 */
package dev.cdas.eval;
