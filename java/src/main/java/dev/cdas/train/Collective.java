package dev.cdas.train;

/**
 * The collectives data-parallel training needs from a group of processes (ranks): every rank
 * calls each of them, in the same order. {@link ProcessGroup} is the one over torch's c10d.
 */
public interface Collective {
    /**
     * This process, 0..{@link #worldSize()}-1.
     *
     * @return the rank
     */
    int rank();

    /** {@return how many processes take part} */
    int worldSize();

    /**
     * Replaces {@code data} on every rank with the elementwise sum over the ranks.
     *
     * @param data the buffer, replaced in place
     */
    void allReduceSum(float[] data);

    /** Returns when every rank has called it. */
    void barrier();
}
