package dev.cdas.data;

import dev.cdas.InvalidArgumentException;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.OptionalInt;
import org.junit.jupiter.api.Test;

class ResponseTruncationTest {
    @Test
    void truncatesTokenIdsAndDropsALeadingBos() {
        int[] ids = {1, 1, 5, 6, 1, 7, 8};
        assertArrayEquals(new int[] {5, 6, 1}, ResponseTruncation.truncate(ids, 3, OptionalInt.of(1)));
        assertArrayEquals(new int[] {5, 6, 1, 7, 8}, ResponseTruncation.truncate(ids, 128, OptionalInt.of(1)));
        assertArrayEquals(new int[] {1, 1, 5}, ResponseTruncation.truncate(ids, 3, OptionalInt.empty()));
        assertArrayEquals(new int[] {}, ResponseTruncation.truncate(new int[] {1}, 3, OptionalInt.of(1)));
        assertThrows(InvalidArgumentException.class, () -> ResponseTruncation.truncate(ids, 0, OptionalInt.empty()));
    }
}
