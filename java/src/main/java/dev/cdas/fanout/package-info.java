/**
 * Training many concepts of one AxBench-style file ({@code concept}/{@code concept_id} per row),
 * split over processes that an existing launcher starts (torchrun, Slurm arrays, Kubernetes
 * Indexed Jobs): {@link dev.cdas.fanout.ConceptSelection} picks the concepts,
 * {@link dev.cdas.fanout.Shard} says which process this is, {@link dev.cdas.fanout.ShardAssignment}
 * gives each process its concepts, {@link dev.cdas.fanout.ConceptFanOut} trains them into an output
 * folder with a manifest, and {@link dev.cdas.fanout.ShardMerge} joins the folders of all shards.
 *
 * <p>A concept's vector depends only on the run's settings, the model and the concept's own pairs:
 * its random stream is seeded from the run's seed and the concept id
 * ({@link dev.cdas.fanout.ConceptFanOut#conceptSeed}), so the shard, the order and the other
 * concepts of a run do not change it.
 */
package dev.cdas.fanout;
