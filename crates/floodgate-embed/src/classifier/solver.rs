//! Fitting one logistic-regression head.
//!
//! Newton's method on the class-weighted mean log loss plus an L2 penalty,
//! over standardised inputs. With a few hundred inputs the Hessian is small
//! (d² doubles) and a Cholesky solve per step is cheap, and Newton needs no
//! learning rate to tune: the penalty makes the problem strictly convex, a
//! backtracking line search keeps every step a descent, and it converges in a
//! handful of iterations. Everything is f64; the weights are stored as f32.

use super::{ClassWeight, TrainOptions};
use crate::error::EmbedError;

/// Fits one head; returns weights and bias over the raw inputs.
pub(super) fn fit(
    inputs: &[&[f32]],
    y: &[bool],
    opts: &TrainOptions,
) -> Result<(Vec<f32>, f32), EmbedError> {
    let n = inputs.len();
    let d = inputs.first().map_or(0, |x| x.len());
    let positives = y.iter().filter(|&&b| b).count();
    if n == 0 || positives == 0 || positives == n {
        return Err(EmbedError::Invalid(format!(
            "a head needs examples of both classes, got {positives} positive of {n}"
        )));
    }

    // Standardise columns so one penalty suits embedding dimensions and
    // caller features alike.
    let mut mean = vec![0f64; d];
    for x in inputs {
        for (m, v) in mean.iter_mut().zip(x.iter()) {
            *m += f64::from(*v);
        }
    }
    mean.iter_mut().for_each(|m| *m /= n as f64);
    let mut scale = vec![0f64; d];
    for x in inputs {
        for ((s, v), m) in scale.iter_mut().zip(x.iter()).zip(&mean) {
            *s += (f64::from(*v) - m).powi(2);
        }
    }
    for s in &mut scale {
        let sd = (*s / n as f64).sqrt();
        *s = if sd > 1e-12 { sd } else { 1.0 };
    }
    // Row-major design matrix with a trailing 1 for the bias.
    let cols = d + 1;
    let mut design = Vec::with_capacity(n * cols);
    for x in inputs {
        design.extend(
            x.iter()
                .zip(&mean)
                .zip(&scale)
                .map(|((v, m), s)| (f64::from(*v) - m) / s),
        );
        design.push(1.0);
    }

    let (w_pos, w_neg) = match opts.class_weight {
        ClassWeight::Uniform => (1.0, 1.0),
        ClassWeight::Balanced => (
            n as f64 / (2.0 * positives as f64),
            n as f64 / (2.0 * (n - positives) as f64),
        ),
        ClassWeight::Positive { positive } => (positive, 1.0),
    };
    let problem = Problem {
        design: &design,
        cols,
        y,
        sample_weight: y.iter().map(|&b| if b { w_pos } else { w_neg }).collect(),
        l2: opts.l2,
    };
    let theta = problem.minimise(opts.max_iterations)?;

    // Fold the standardisation back: w·((x - μ)/σ) + b = (w/σ)·x + (b - Σ wμ/σ).
    let mut bias = theta[d];
    let mut weights = Vec::with_capacity(d);
    for j in 0..d {
        let w = theta[j] / scale[j];
        bias -= w * mean[j];
        weights.push(w as f32);
    }
    Ok((weights, bias as f32))
}

struct Problem<'a> {
    design: &'a [f64],
    cols: usize,
    y: &'a [bool],
    sample_weight: Vec<f64>,
    l2: f64,
}

impl Problem<'_> {
    fn rows(&self) -> impl Iterator<Item = &[f64]> {
        self.design.chunks_exact(self.cols)
    }

    fn penalty(&self, theta: &[f64]) -> f64 {
        // The last coordinate is the bias, which is not penalised.
        0.5 * self.l2 * theta[..self.cols - 1].iter().map(|t| t * t).sum::<f64>()
    }

    fn loss(&self, theta: &[f64]) -> f64 {
        let n = self.y.len() as f64;
        let data: f64 = self
            .rows()
            .zip(self.y)
            .zip(&self.sample_weight)
            .map(|((row, &y), c)| {
                let z = dot(row, theta);
                // log(1 + e^z) - y·z, without overflow for large |z|.
                let softplus = if z > 0.0 {
                    z + (-z).exp().ln_1p()
                } else {
                    z.exp().ln_1p()
                };
                c * (softplus - if y { z } else { 0.0 })
            })
            .sum();
        data / n + self.penalty(theta)
    }

    /// Gradient and Hessian (upper triangle filled, then mirrored).
    fn derivatives(&self, theta: &[f64]) -> (Vec<f64>, Vec<f64>) {
        let (n, k) = (self.y.len() as f64, self.cols);
        let mut grad = vec![0f64; k];
        let mut hess = vec![0f64; k * k];
        for ((row, &y), c) in self.rows().zip(self.y).zip(&self.sample_weight) {
            let p = 1.0 / (1.0 + (-dot(row, theta)).exp());
            let g = c * (p - if y { 1.0 } else { 0.0 }) / n;
            let h = c * p * (1.0 - p) / n;
            for (gj, xj) in grad.iter_mut().zip(row) {
                *gj += g * xj;
            }
            for a in 0..k {
                let ha = h * row[a];
                if ha == 0.0 {
                    continue;
                }
                let out = &mut hess[a * k + a..(a + 1) * k];
                for (o, xb) in out.iter_mut().zip(&row[a..]) {
                    *o += ha * xb;
                }
            }
        }
        for a in 0..k - 1 {
            grad[a] += self.l2 * theta[a];
            hess[a * k + a] += self.l2;
        }
        // A whisker of curvature on every coordinate (the bias included)
        // keeps the system positive definite even with l2 = 0.
        for a in 0..k {
            hess[a * k + a] += 1e-10;
            for b in 0..a {
                hess[a * k + b] = hess[b * k + a];
            }
        }
        (grad, hess)
    }

    fn minimise(&self, max_iterations: usize) -> Result<Vec<f64>, EmbedError> {
        let mut theta = vec![0f64; self.cols];
        let mut loss = self.loss(&theta);
        for _ in 0..max_iterations {
            let (grad, hess) = self.derivatives(&theta);
            if grad.iter().all(|g| g.abs() < 1e-9) {
                break;
            }
            let step = cholesky_solve(hess, &grad, self.cols).ok_or_else(|| {
                EmbedError::Invalid("logistic regression: Hessian not positive definite".into())
            })?;
            let slope: f64 = grad.iter().zip(&step).map(|(g, s)| g * s).sum();
            // Backtracking (Armijo) line search along -step.
            let mut t = 1.0;
            let mut accepted = None;
            for _ in 0..40 {
                let candidate: Vec<f64> =
                    theta.iter().zip(&step).map(|(th, s)| th - t * s).collect();
                let l = self.loss(&candidate);
                if l <= loss - 1e-4 * t * slope {
                    accepted = Some((candidate, l));
                    break;
                }
                t *= 0.5;
            }
            let Some((next, next_loss)) = accepted else {
                break; // No further descent possible at f64 precision.
            };
            let improvement = loss - next_loss;
            theta = next;
            loss = next_loss;
            if improvement < 1e-12 * loss.abs().max(1e-12) {
                break;
            }
        }
        if theta.iter().all(|t| t.is_finite()) {
            Ok(theta)
        } else {
            Err(EmbedError::Invalid("logistic regression diverged".into()))
        }
    }
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Solves `a · x = b` for a symmetric positive-definite `a` (k×k, row-major),
/// or `None` when `a` is not positive definite.
fn cholesky_solve(mut a: Vec<f64>, b: &[f64], k: usize) -> Option<Vec<f64>> {
    // In place: the lower triangle becomes L with a = L·Lᵀ.
    for j in 0..k {
        let mut diag = a[j * k + j];
        for p in 0..j {
            diag -= a[j * k + p] * a[j * k + p];
        }
        if diag <= 0.0 || !diag.is_finite() {
            return None;
        }
        let diag = diag.sqrt();
        a[j * k + j] = diag;
        for i in j + 1..k {
            let mut v = a[i * k + j];
            for p in 0..j {
                v -= a[i * k + p] * a[j * k + p];
            }
            a[i * k + j] = v / diag;
        }
    }
    // L·z = b, then Lᵀ·x = z.
    let mut z = b.to_vec();
    for i in 0..k {
        for p in 0..i {
            z[i] -= a[i * k + p] * z[p];
        }
        z[i] /= a[i * k + i];
    }
    for i in (0..k).rev() {
        for p in i + 1..k {
            z[i] -= a[p * k + i] * z[p];
        }
        z[i] /= a[i * k + i];
    }
    Some(z)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cholesky_solves_a_small_system() {
        // [[4, 2], [2, 3]] x = [2, 1] → x = [0.5, 0]
        let x = cholesky_solve(vec![4.0, 2.0, 2.0, 3.0], &[2.0, 1.0], 2).unwrap();
        assert!((x[0] - 0.5).abs() < 1e-12 && x[1].abs() < 1e-12, "{x:?}");
        assert!(cholesky_solve(vec![1.0, 2.0, 2.0, 1.0], &[1.0, 1.0], 2).is_none());
    }

    #[test]
    fn unpenalised_fit_matches_the_closed_form_for_one_binary_feature() {
        // With one 0/1 feature and no penalty, the fitted probabilities equal
        // the empirical rates in each group: P(y|x=0) = 1/4, P(y|x=1) = 3/4.
        let xs: Vec<Vec<f32>> = [0., 0., 0., 0., 1., 1., 1., 1.]
            .iter()
            .map(|&v| vec![v])
            .collect();
        let inputs: Vec<&[f32]> = xs.iter().map(Vec::as_slice).collect();
        let y = [true, false, false, false, true, true, true, false];
        let opts = TrainOptions {
            l2: 0.0,
            class_weight: ClassWeight::Uniform,
            ..TrainOptions::default()
        };
        let (w, b) = fit(&inputs, &y, &opts).unwrap();
        let p = |x: f32| 1.0 / (1.0 + (-(w[0] * x + b)).exp());
        assert!((p(0.0) - 0.25).abs() < 1e-4, "{}", p(0.0));
        assert!((p(1.0) - 0.75).abs() < 1e-4, "{}", p(1.0));
    }
}
