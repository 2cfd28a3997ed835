package dev.cdas.train;

/**
 * Progress of a long-running library call (training, a DiffMean pass). The library never prints:
 * a caller that wants a bar draws it from these calls (the command line's
 * {@code dev.cdas.cli.ConsoleProgress} does).
 */
@FunctionalInterface
public interface ProgressListener {
    /**
     * {@code done} of {@code total} units of {@code task} ("train": optimiser steps, "diffmean":
     * sequences); {@code detail} says how it goes ("loss 0.1234  512 tok/s"), possibly empty.
     *
     * @param task   what is running: "train", "diffmean", ...
     * @param done   the units done so far
     * @param total  the units in all
     * @param detail how it goes, or ""
     */
    void progress(String task, long done, long total, String detail);

    /**
     * The task ended (normally or not); no more calls for it follow.
     *
     * @param task the task that ended
     */
    default void finished(String task) {}

    /**
     * The JVM is shutting down (SIGTERM, Ctrl-C) while {@code task} runs, after {@code done} of
     * {@code total} units; {@code what} says what was kept ("checkpoint of this step written to
     * FILE"). Called from a shutdown hook, once at most.
     *
     * @param task  the task that was running
     * @param done  the units done
     * @param total the units in all
     * @param what  what was kept, one phrase
     */
    default void interrupted(String task, long done, long total, String what) {}
}
