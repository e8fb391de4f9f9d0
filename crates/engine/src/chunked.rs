//! Values appended in chunks, for aggregate functions that keep millions of rows until
//! their groups are evaluated.

use std::mem::size_of;

/// The values a chunk holds. The first chunk grows as a vector does up to this length, so
/// a short sequence stays small; every later chunk is allocated at this length.
const CHUNK_LEN: usize = 1024;

/// A sequence of values in chunks of [`CHUNK_LEN`]. A vector copies its values each time
/// it doubles, and holds twice their memory while it does; a sequence of millions of
/// values appended here is written once. Value `i` is in chunk `i / CHUNK_LEN`.
pub(crate) struct Chunked<T> {
    chunks: Vec<Vec<T>>,
}

impl<T> Default for Chunked<T> {
    fn default() -> Self {
        Chunked { chunks: Vec::new() }
    }
}

impl<T> Chunked<T> {
    /// Appends `value`: inlined, as aggregate functions call it for every row.
    #[inline]
    pub(crate) fn push(&mut self, value: T) {
        match self.chunks.last_mut() {
            Some(chunk) if chunk.len() < CHUNK_LEN => chunk.push(value),
            _ => self.push_to_new_chunk(value),
        }
    }

    #[cold]
    #[inline(never)]
    fn push_to_new_chunk(&mut self, value: T) {
        let capacity = if self.chunks.is_empty() { 1 } else { CHUNK_LEN };
        let mut chunk = Vec::with_capacity(capacity);
        chunk.push(value);
        self.chunks.push(chunk);
    }

    pub(crate) fn len(&self) -> usize {
        self.chunks
            .last()
            .map_or(0, |last| (self.chunks.len() - 1) * CHUNK_LEN + last.len())
    }

    /// Value `index`, which must be below [`Self::len`].
    pub(crate) fn get(&self, index: usize) -> &T {
        &self.chunks[index / CHUNK_LEN][index % CHUNK_LEN]
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &T> {
        self.into_iter()
    }

    /// The memory the values take.
    pub(crate) fn size(&self) -> usize {
        (self.chunks.iter())
            .map(|chunk| chunk.capacity() * size_of::<T>())
            .sum::<usize>()
            + self.chunks.capacity() * size_of::<Vec<T>>()
    }
}

impl<'a, T> IntoIterator for &'a Chunked<T> {
    type Item = &'a T;
    type IntoIter = std::iter::Flatten<std::slice::Iter<'a, Vec<T>>>;

    fn into_iter(self) -> Self::IntoIter {
        self.chunks.iter().flatten()
    }
}

impl<T> IntoIterator for Chunked<T> {
    type Item = T;
    type IntoIter = std::iter::Flatten<std::vec::IntoIter<Vec<T>>>;

    fn into_iter(self) -> Self::IntoIter {
        self.chunks.into_iter().flatten()
    }
}

impl<T> Extend<T> for Chunked<T> {
    fn extend<I: IntoIterator<Item = T>>(&mut self, values: I) {
        for value in values {
            self.push(value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_keep_their_order_and_positions_across_chunks() {
        let mut values = Chunked::default();
        assert_eq!(values.len(), 0);
        let count = 3 * CHUNK_LEN + 7;
        values.extend(0..count);
        assert_eq!(values.len(), count);
        assert!((0..count).all(|index| *values.get(index) == index));
        assert!(values.iter().copied().eq(0..count));
        assert!(values.into_iter().eq(0..count));
    }
}
