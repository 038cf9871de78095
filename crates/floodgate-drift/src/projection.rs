//! A fixed Gaussian random projection of sentence embeddings to [`PROJECTED_DIM`] numbers, so
//! a request event carries 32 floats instead of MiniLM's 384 and the MMD test stays cheap.
//! Random projections keep pairwise distances within a small factor (Johnson–Lindenstrauss),
//! which is what a kernel two-sample test looks at.
//!
//! **Invariant:** the matrix depends on nothing but [`PROJECTION_SEED`] and the input
//! dimension, so events written by any process or release are comparable with any profile.
//! Entry `(j, i)` (input coordinate `j`, output `i`) is draw number `32 * j + i` of
//! SplitMix64 seeded with [`PROJECTION_SEED`], turned into a standard normal by Box–Muller;
//! the matrix for a shorter input is therefore a prefix of the one for a longer input. The
//! result is normalised to unit length and rounded to 3 decimals, which also hides any
//! last-bit difference between platforms' `ln`/`cos`.

use std::sync::OnceLock;

use crate::rng::SplitMix64;

/// Dimension of projected embeddings.
pub const PROJECTED_DIM: usize = 32;

/// Seed of the projection matrix ("Floodgat" in ASCII). Changing it invalidates every stored
/// profile and event embedding.
pub const PROJECTION_SEED: u64 = 0x466C_6F6F_6467_6174;

struct Projector {
    dim: usize,
    /// Column-major: `PROJECTED_DIM` entries per input coordinate.
    matrix: Vec<f32>,
}

impl Projector {
    fn new(dim: usize) -> Self {
        let mut rng = SplitMix64::new(PROJECTION_SEED);
        let matrix = (0..dim * PROJECTED_DIM)
            .map(|_| rng.gaussian() as f32)
            .collect();
        Self { dim, matrix }
    }

    // Indexed loops: unoptimised test builds run them ten times faster than iterator chains.
    #[allow(clippy::needless_range_loop)]
    fn project(&self, embedding: &[f32]) -> Vec<f32> {
        let mut out = [0f32; PROJECTED_DIM];
        for (&x, column) in embedding
            .iter()
            .zip(self.matrix.chunks_exact(PROJECTED_DIM))
        {
            for i in 0..PROJECTED_DIM {
                out[i] += x * column[i];
            }
        }
        let norm = out.iter().map(|v| v * v).sum::<f32>().sqrt();
        if !norm.is_finite() || norm == 0.0 {
            return vec![0.0; PROJECTED_DIM];
        }
        out.iter()
            .map(|v| ((v / norm) * 1000.0).round() / 1000.0)
            .collect()
    }
}

/// The matrix for the first input dimension seen (MiniLM's 384 in practice) is built once;
/// another dimension is built per call (about 12k Gaussian draws for 384 inputs).
static FIRST: OnceLock<Projector> = OnceLock::new();

/// Projects an embedding of any dimension to [`PROJECTED_DIM`] numbers: a fixed seeded
/// Gaussian matrix, then unit length, then 3 decimals. An empty, all-zero or non-finite input
/// gives all zeros.
pub fn project(embedding: &[f32]) -> Vec<f32> {
    let projector = FIRST.get_or_init(|| Projector::new(embedding.len()));
    if projector.dim == embedding.len() {
        projector.project(embedding)
    } else {
        Projector::new(embedding.len()).project(embedding)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(dim: usize, seed: u64) -> Vec<f32> {
        let mut rng = SplitMix64::new(seed);
        (0..dim).map(|_| rng.gaussian() as f32).collect()
    }

    #[test]
    fn projection_is_deterministic_and_unit_norm() {
        let x = sample(384, 3);
        let a = project(&x);
        let b = Projector::new(384).project(&x);
        assert_eq!(a, b);
        assert_eq!(a.len(), PROJECTED_DIM);
        let norm = a.iter().map(|v| v * v).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 0.01, "norm {norm}");
        assert!(a
            .iter()
            .all(|v| (v * 1000.0 - (v * 1000.0).round()).abs() < 1e-3));
    }

    #[test]
    fn projection_matrix_is_pinned() {
        // Any change to the generator, the seed or the layout moves these numbers, and with
        // them every stored profile: that must be a deliberate, versioned change.
        let unit: Vec<f32> = (0..4).map(|i| if i == 0 { 1.0 } else { 0.0 }).collect();
        let column = project(&unit);
        let mut rng = SplitMix64::new(PROJECTION_SEED);
        let raw: Vec<f64> = (0..PROJECTED_DIM).map(|_| rng.gaussian()).collect();
        let norm = raw.iter().map(|v| v * v).sum::<f64>().sqrt();
        for (got, want) in column.iter().zip(&raw) {
            assert!((f64::from(*got) - want / norm).abs() < 1.5e-3);
        }
        assert_eq!(&column[..4], PINNED_FIRST_COLUMN);
    }

    const PINNED_FIRST_COLUMN: &[f32] = &[0.013, 0.094, -0.021, -0.119];

    #[test]
    fn shorter_inputs_use_a_prefix_of_the_matrix() {
        let short = Projector::new(10);
        let long = Projector::new(20);
        assert_eq!(short.matrix[..], long.matrix[..short.matrix.len()]);
    }

    #[test]
    fn degenerate_inputs_give_zeros() {
        assert_eq!(project(&[]), vec![0.0; PROJECTED_DIM]);
        assert_eq!(project(&[0.0; 384]), vec![0.0; PROJECTED_DIM]);
        assert_eq!(project(&[f32::NAN; 384]), vec![0.0; PROJECTED_DIM]);
    }

    #[test]
    fn nearby_inputs_stay_nearby() {
        let x = sample(384, 5);
        let mut y = x.clone();
        y[0] += 0.05;
        let far = sample(384, 6);
        let d = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(p, q)| (p - q).powi(2)).sum::<f32>();
        let (px, py, pf) = (project(&x), project(&y), project(&far));
        assert!(d(&px, &py) < d(&px, &pf) / 10.0);
    }
}
