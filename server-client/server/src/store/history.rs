//! Metric histories of several runs at once, down-sampled here rather than in the browser.
//!
//! A 100 000-point series is read in one pass in axis order and folded into `max_points / 4`
//! buckets of equal width on the axis; each bucket keeps its first, last, lowest and highest
//! point (the M4 rule). A line through those points draws the same pixels as the full series
//! at that width, so a single spike is never averaged or skipped away, which is what
//! stride or LTTB sampling does to loss curves. Zooming asks again for the visible range.

use futures_util::TryStreamExt;
use kiln_api::{ApiError, Histories, HistoryAxis, HistoryRequest, Series, limits};
use sqlx::Row;

use super::{Result, Store};

/// One stored point, with its position in the series' order (ties on the axis keep it).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Point {
    order: u64,
    step: i64,
    timestamp: i64,
    value: f64,
}

/// The M4 fold: first, last, lowest and highest point of each bucket.
struct Sampler {
    lo: i64,
    span: i128,
    buckets: Vec<Option<[Point; 4]>>,
}

impl Sampler {
    /// Buckets of equal width over `lo..=hi` on the axis.
    fn new(lo: i64, hi: i64, buckets: usize) -> Sampler {
        Sampler { lo, span: i128::from(hi) - i128::from(lo) + 1, buckets: vec![None; buckets.max(1)] }
    }

    /// `x` is the point's place on the axis; points come in axis order.
    fn push(&mut self, x: i64, point: Point) {
        let n = self.buckets.len() as i128;
        let index = ((i128::from(x) - i128::from(self.lo)) * n / self.span).clamp(0, n - 1) as usize;
        match &mut self.buckets[index] {
            None => self.buckets[index] = Some([point; 4]),
            Some([_, last, low, high]) => {
                *last = point;
                // Strictly lower or higher: the first of equal extremes stays, as drawn.
                if point.value < low.value {
                    *low = point;
                }
                if point.value > high.value {
                    *high = point;
                }
            }
        }
    }

    /// The kept points in series order, each once.
    fn finish(self) -> Vec<Point> {
        let mut kept: Vec<Point> = Vec::with_capacity(self.buckets.len() * 4);
        for bucket in self.buckets.into_iter().flatten() {
            let mut four = bucket;
            four.sort_by_key(|p| p.order);
            for point in four {
                if kept.last().is_none_or(|last| last.order != point.order) {
                    kept.push(point);
                }
            }
        }
        kept
    }
}

fn axis_column(axis: HistoryAxis) -> (&'static str, &'static str) {
    match axis {
        HistoryAxis::Step => ("step", "step, timestamp, seq"),
        HistoryAxis::Time => ("timestamp", "timestamp, step, seq"),
    }
}

impl Store {
    /// Each asked run's series of each asked key, in the asked range, down-sampled to at most
    /// `max_points` points. An unknown run is an error naming it (`runs[2]`); a run that never
    /// logged a key has an empty series.
    pub async fn histories(&self, request: &HistoryRequest) -> Result<Histories> {
        limits::history(request)?;
        let mut series = Vec::with_capacity(request.runs.len() * request.keys.len());
        for (i, run_id) in request.runs.iter().enumerate() {
            if !super::exists(&self.pool, "SELECT id FROM runs WHERE id = $1", run_id).await? {
                return Err(ApiError::new(kiln_api::ErrorCode::ResourceDoesNotExist, format!("runs[{i}]: run '{run_id}' not found")).into());
            }
            for key in &request.keys {
                series.push(self.series(run_id, key, request).await?);
            }
        }
        Ok(Histories { series })
    }

    async fn series(&self, run_id: &str, key: &str, request: &HistoryRequest) -> Result<Series> {
        let (x, order) = axis_column(request.axis);
        let mut range = String::new();
        let mut bounds = Vec::new();
        for (bound, op) in [(request.from, ">="), (request.to, "<=")] {
            if let Some(bound) = bound {
                bounds.push(bound);
                range.push_str(&format!(" AND {x} {op} ${}", 2 + bounds.len()));
            }
        }
        let filter = format!("FROM metrics WHERE run_id = $1 AND key = $2{range}");
        let mut stats = sqlx::query(super::audited(format!("SELECT COUNT(*) AS n, MIN({x}) AS lo, MAX({x}) AS hi {filter}"))).bind(run_id).bind(key);
        for bound in &bounds {
            stats = stats.bind(*bound);
        }
        let stats = stats.fetch_one(&self.pool).await?;
        let total: i64 = stats.try_get("n")?;
        let mut out =
            Series { run_id: run_id.to_owned(), key: key.to_owned(), total: total as u64, sampled: false, steps: vec![], timestamps: vec![], values: vec![] };
        if total == 0 {
            return Ok(out);
        }
        let (lo, hi): (i64, i64) = (stats.try_get("lo")?, stats.try_get("hi")?);
        let mut rows = sqlx::query(super::audited(format!("SELECT step, timestamp, value {filter} ORDER BY {order}"))).bind(run_id).bind(key);
        for bound in &bounds {
            rows = rows.bind(*bound);
        }
        let mut rows = rows.fetch(&self.pool);
        let sample = total as u64 > u64::from(request.max_points);
        let mut sampler = Sampler::new(lo, hi, (request.max_points / 4) as usize);
        let mut all = Vec::new();
        let mut order = 0u64;
        while let Some(row) = rows.try_next().await? {
            let point = Point { order, step: row.try_get("step")?, timestamp: row.try_get("timestamp")?, value: row.try_get("value")? };
            order += 1;
            if sample {
                sampler.push(if request.axis == HistoryAxis::Step { point.step } else { point.timestamp }, point);
            } else {
                all.push(point);
            }
        }
        let points = if sample { sampler.finish() } else { all };
        out.sampled = sample;
        out.steps = points.iter().map(|p| p.step).collect();
        out.timestamps = points.iter().map(|p| p.timestamp).collect();
        out.values = points.iter().map(|p| p.value).collect();
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(values: &[f64], buckets: usize) -> Vec<(i64, f64)> {
        let mut sampler = Sampler::new(0, values.len() as i64 - 1, buckets);
        for (i, value) in values.iter().enumerate() {
            sampler.push(i as i64, Point { order: i as u64, step: i as i64, timestamp: 0, value: *value });
        }
        sampler.finish().into_iter().map(|p| (p.step, p.value)).collect()
    }

    #[test]
    fn each_bucket_keeps_its_first_last_lowest_and_highest_point() {
        // Two buckets of four points each.
        type Case<'a> = (&'a [f64], Vec<(i64, f64)>);
        let cases: Vec<Case> = vec![
            (&[1.0, 5.0, 0.0, 2.0, 3.0, 3.0, 9.0, 4.0], vec![(0, 1.0), (1, 5.0), (2, 0.0), (3, 2.0), (4, 3.0), (6, 9.0), (7, 4.0)]),
            // A flat series keeps each bucket's ends only.
            (&[1.0; 8], vec![(0, 1.0), (3, 1.0), (4, 1.0), (7, 1.0)]),
            // Fewer points than slots: each kept once.
            (&[0.0; 3], vec![(0, 0.0), (1, 0.0), (2, 0.0)]),
        ];
        for (values, expected) in cases {
            assert_eq!(sample(values, 2), expected, "{values:?}");
        }
    }

    #[test]
    fn no_spike_is_lost_and_the_ends_stay() {
        let mut values: Vec<f64> = (0..100_000).map(|i| (f64::from(i) / 1000.0).sin()).collect();
        values[31_337] = 50.0;
        values[77_777] = -50.0;
        let kept = sample(&values, 250);
        assert!(kept.len() <= 1000, "{} points", kept.len());
        assert_eq!(kept.first(), Some(&(0, values[0])));
        assert_eq!(kept.last(), Some(&(99_999, values[99_999])));
        assert!(kept.contains(&(31_337, 50.0)) && kept.contains(&(77_777, -50.0)));
        // Every bucket's extremes are kept: the sampled curve spans what the full one does.
        let width = 100_000 / 250;
        for bucket in 0..250 {
            let slice = &values[bucket * width..(bucket + 1) * width];
            let max = slice.iter().copied().fold(f64::MIN, f64::max);
            let min = slice.iter().copied().fold(f64::MAX, f64::min);
            let inside: Vec<f64> = kept.iter().filter(|(s, _)| (*s as usize) / width == bucket).map(|(_, v)| *v).collect();
            assert!(inside.contains(&max) && inside.contains(&min), "bucket {bucket}");
        }
    }

    #[test]
    fn points_in_series_order_each_once() {
        let kept = sample(&[3.0, 1.0, 2.0, 0.0, 5.0], 1);
        assert_eq!(kept, [(0, 3.0), (3, 0.0), (4, 5.0)]);
    }
}
