package dev.cdas;

import dev.cdas.bindings.cdas_h;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.concurrent.locks.LockSupport;

/** The one place where a native status becomes a typed exception. */
public final class Native {
    private Native() {
    }

    /**
     * Returns normally on {@code CDAS_STATUS_OK}; otherwise throws the exception of the status with
     * the native message. Call it right after the native call, on the same thread, because
     * {@code cdas_last_error()} is thread-local and the next call overwrites it.
     *
     * @param status the value a {@code cdas_*} call returned
     * @throws CdasException the subclass of the status ({@link InvalidArgumentException} for
     *         {@code CDAS_STATUS_INVALID_ARGUMENT}, and so on) when it is not OK
     */
    public static void check(int status) {
        if (status == cdas_h.CDAS_STATUS_OK()) {
            return;
        }
        throw exception(Status.of(status), status, lastError());
    }

    /**
     * The message of the last failed call on this thread ("" after a success).
     *
     * @return the message, or "" when there is none
     */
    public static String lastError() {
        MemorySegment message = cdas_h.cdas_last_error();
        if (message.equals(MemorySegment.NULL)) {
            return "";
        }
        return message.reinterpret(Long.MAX_VALUE).getString(0);
    }

    /**
     * Closes the shared arena that owns a native handle (running its destroy action), first waiting
     * for the calls in flight on other threads to return: the linker keeps the arena of every
     * segment passed to a downcall acquired for the call's duration, and a shared arena refuses to
     * close while acquired. The caller has already marked its object closed, so no new call
     * starts; the wait is bounded by the longest call in flight. Interrupts are kept for the caller.
     *
     * @param arena the shared arena to close
     */
    public static void closeWhenIdle(Arena arena) {
        boolean interrupted = false;
        long pauseNanos = 10_000;
        while (true) {
            try {
                arena.close();
                break;
            } catch (IllegalStateException inUse) {
                if (!arena.scope().isAlive()) {
                    break;  // closed already: nothing to wait for
                }
                // "Session is acquired by N clients": a native call on another thread still runs.
                LockSupport.parkNanos(pauseNanos);
                pauseNanos = Math.min(pauseNanos * 2, 10_000_000);
                interrupted |= Thread.interrupted();
            }
        }
        if (interrupted) {
            Thread.currentThread().interrupt();
        }
    }

    static CdasException exception(Status status, int code, String nativeMessage) {
        String message = nativeMessage == null || nativeMessage.isEmpty()
                ? "cdas call failed with status " + status + " (" + code + ") and no message"
                : nativeMessage;
        return switch (status) {
            case INVALID_ARGUMENT -> new InvalidArgumentException(message);
            case NON_FINITE -> new NonFiniteException(message);
            case OUT_OF_MEMORY -> new OutOfMemoryException(message);
            case UNSUPPORTED -> new UnsupportedFeatureException(message);
            case DEVICE_ERROR -> new DeviceException(message);
            case IO_ERROR -> new NativeIOException(message);
            case INTERNAL -> new InternalException(code == cdas_h.CDAS_STATUS_INTERNAL() ? message
                    : "unknown status " + code + " from libcdas: " + message);
            // Deliberately the JDK type: a caller bug inside this package, never an input error.
            case OK -> throw new IllegalArgumentException("status OK is not a failure");
        };
    }
}
