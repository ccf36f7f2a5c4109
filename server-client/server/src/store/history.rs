//! Metric histories of several runs at once, down-sampled here rather than in the browser.
//!
//! A series is folded into at most `max_points / 4` buckets of equal width on the axis; each
//! bucket keeps its first, last, lowest and highest point (the M4 rule). A line through those
//! points draws the same pixels as the full series at that width, so a single spike is never
//! averaged or skipped away, which is what stride or LTTB sampling does to loss curves.
//! Zooming asks again for the visible range.
//!
//! Reading 100 000 points to keep 2 000 costs more than the answer is worth (each row
//! crosses the database driver), so every `log_batch` also folds its points into
//! `metric_blocks`: per `BLOCK_STEPS` steps, the same four points. A bucket made of whole
//! blocks has as first, last, lowest and highest point those of its blocks, so a long
//! series by step is sampled from its blocks (a 32nd of the rows) plus the few raw points
//! at the range's ragged ends, with the very answer the raw fold gives for those buckets.
//! By wall time, and when the range is too short for a bucket to hold two blocks, the raw
//! points are folded.

use std::collections::BTreeMap;

use futures_util::TryStreamExt;
use kiln_api::{ApiError, Histories, HistoryAxis, HistoryRequest, Series, limits};
use sqlx::Row;

use super::{Backend, Result, Store};

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
        self.push_at(index, point);
    }

    /// Into bucket `index` (clamped to the last); points come in axis order.
    fn push_at(&mut self, index: usize, point: Point) {
        let index = index.min(self.buckets.len() - 1);
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

/// Steps per row of `metric_blocks`. Small enough that a range of a few thousand steps is
/// already read from blocks; large enough that a long series has a 32nd of the rows.
const BLOCK_STEPS: i64 = 32;

/// The block a step falls in (steps may be negative).
fn block_of(step: i64) -> i64 {
    step.div_euclid(BLOCK_STEPS)
}

/// Where a point sits in series order: step, then time, then the order it was logged in.
fn series_order(p: &Point) -> (i64, i64, u64) {
    (p.step, p.timestamp, p.order)
}

/// One row of `metric_blocks`: the first, last, lowest and highest point of a block.
/// Equal values keep the point first in series order, as the raw fold does.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Block {
    first: Point,
    last: Point,
    low: Point,
    high: Point,
}

impl Block {
    fn of(point: Point) -> Block {
        Block { first: point, last: point, low: point, high: point }
    }

    /// Folds in a point from anywhere in the block (a batch's points come in any order;
    /// `order` is their place in it, which is also the order the store keeps them in).
    fn absorb(&mut self, p: Point) {
        if series_order(&p) < series_order(&self.first) {
            self.first = p;
        }
        if series_order(&p) > series_order(&self.last) {
            self.last = p;
        }
        if p.value < self.low.value || (p.value == self.low.value && series_order(&p) < series_order(&self.low)) {
            self.low = p;
        }
        if p.value > self.high.value || (p.value == self.high.value && series_order(&p) < series_order(&self.high)) {
            self.high = p;
        }
    }

    /// What the store's upsert does: folds in a block of points all logged after this one's
    /// (so on a tie in step and time the stored point stays first and the new one is last).
    #[cfg(test)]
    fn merge_later(&mut self, new: Block) {
        let before = |a: &Point, b: &Point| (a.step, a.timestamp) < (b.step, b.timestamp);
        if before(&new.first, &self.first) {
            self.first = new.first;
        }
        if !before(&new.last, &self.last) {
            self.last = new.last;
        }
        if new.low.value < self.low.value || (new.low.value == self.low.value && before(&new.low, &self.low)) {
            self.low = new.low;
        }
        if new.high.value > self.high.value || (new.high.value == self.high.value && before(&new.high, &self.high)) {
            self.high = new.high;
        }
    }

    /// Its distinct points in series order (a point can be first and lowest at once).
    fn points(&self) -> Vec<Point> {
        let mut points = vec![self.first, self.low, self.high, self.last];
        points.sort_by_key(series_order);
        points.dedup_by(|a, b| (a.step, a.timestamp, a.value.to_bits()) == (b.step, b.timestamp, b.value.to_bits()));
        points
    }
}

const ROLES: [&str; 4] = ["first", "last", "low", "high"];

/// The upsert that folds a batch's blocks into the stored ones. The stored point was logged
/// earlier, so on a tie in series order it stays first and the new one becomes last.
fn upsert_blocks_sql(backend: Backend, rows: usize) -> String {
    let columns: Vec<String> = ROLES.iter().flat_map(|r| [format!("{r}_step"), format!("{r}_timestamp"), format!("{r}_value")]).collect();
    let values: Vec<String> = (0..rows).map(|i| format!("({})", super::placeholders(backend, 1 + i * 15, 15))).collect();
    let before =
        |a: &str, b: &str, r: &str| format!("({a}.{r}_step < {b}.{r}_step OR ({a}.{r}_step = {b}.{r}_step AND {a}.{r}_timestamp < {b}.{r}_timestamp))");
    let new_first = before("excluded", "metric_blocks", "first");
    let new_last = format!("NOT {}", before("excluded", "metric_blocks", "last"));
    let new_low = format!(
        "(excluded.low_value < metric_blocks.low_value OR (excluded.low_value = metric_blocks.low_value AND {}))",
        before("excluded", "metric_blocks", "low")
    );
    let new_high = format!(
        "(excluded.high_value > metric_blocks.high_value OR (excluded.high_value = metric_blocks.high_value AND {}))",
        before("excluded", "metric_blocks", "high")
    );
    let updates: Vec<String> = ROLES
        .iter()
        .zip([new_first, new_last, new_low, new_high])
        .flat_map(|(r, when)| {
            ["step", "timestamp", "value"].map(|c| format!("{r}_{c} = CASE WHEN {when} THEN excluded.{r}_{c} ELSE metric_blocks.{r}_{c} END"))
        })
        .collect();
    format!(
        "INSERT INTO metric_blocks (run_id, key, block, {}) VALUES {} ON CONFLICT (run_id, key, block) DO UPDATE SET {}",
        columns.join(", "),
        values.join(", "),
        updates.join(", ")
    )
}

/// Folds one `log_batch`'s metrics into `metric_blocks` (called in its transaction).
pub(super) async fn fold_batch(tx: &mut sqlx::Transaction<'static, sqlx::Any>, backend: Backend, run_id: &str, metrics: &[kiln_api::Metric]) -> Result<()> {
    let points = metrics.iter().enumerate().map(|(i, m)| (m.key.as_str(), Point { order: i as u64, step: m.step, timestamp: m.timestamp, value: m.value }));
    write_blocks(tx, backend, run_id, points).await
}

/// Folds `metrics` (one run's, in the order they are stored) into `metric_blocks`.
async fn write_blocks<'a>(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    backend: Backend,
    run_id: &str,
    metrics: impl IntoIterator<Item = (&'a str, Point)>,
) -> Result<()> {
    let mut blocks: BTreeMap<(&str, i64), Block> = BTreeMap::new();
    for (key, point) in metrics {
        blocks.entry((key, block_of(point.step))).and_modify(|b| b.absorb(point)).or_insert_with(|| Block::of(point));
    }
    let blocks: Vec<_> = blocks.into_iter().collect();
    const CHUNK: usize = 100;
    for chunk in blocks.chunks(CHUNK) {
        let mut query = sqlx::query(super::audited(upsert_blocks_sql(backend, chunk.len())));
        for ((key, block), b) in chunk {
            query = query.bind(run_id.to_owned()).bind(key.to_string()).bind(*block);
            for p in [b.first, b.last, b.low, b.high] {
                query = query.bind(p.step).bind(p.timestamp).bind(p.value);
            }
        }
        query.execute(&mut **tx).await?;
    }
    Ok(())
}

/// Fills `metric_blocks` from the points of a store made before it existed: once, when the
/// store opens with points and no blocks. The upsert is idempotent, so two servers doing
/// it at once on one PostgreSQL agree.
pub(super) async fn backfill_blocks(pool: &sqlx::AnyPool, backend: Backend) -> Result<()> {
    let has = |table: &str| sqlx::query(super::audited(format!("SELECT 1 AS one FROM {table} LIMIT 1"))).fetch_optional(pool);
    if has("metrics").await?.is_none() || has("metric_blocks").await?.is_some() {
        return Ok(());
    }
    let series: Vec<(String, String)> = sqlx::query("SELECT DISTINCT run_id, key FROM metrics")
        .fetch_all(pool)
        .await?
        .iter()
        .map(|row| Ok((row.try_get("run_id")?, row.try_get("key")?)))
        .collect::<Result<_>>()?;
    tracing::info!(series = series.len(), "folding the stored metric points into blocks, once");
    let mut tx = pool.begin().await?;
    for (run_id, key) in &series {
        let points: Vec<Point> = sqlx::query("SELECT step, timestamp, value FROM metrics WHERE run_id = $1 AND key = $2 ORDER BY seq")
            .bind(run_id)
            .bind(key)
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .enumerate()
            .map(|(i, row)| Ok(Point { order: i as u64, step: row.try_get("step")?, timestamp: row.try_get("timestamp")?, value: row.try_get("value")? }))
            .collect::<Result<_>>()?;
        write_blocks(&mut tx, backend, run_id, points.into_iter().map(|p| (key.as_str(), p))).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// How a range by step is read from blocks: the whole blocks inside `lo..=hi`, `width` of
/// them to a bucket; the points before the first and after the last are read raw and go to
/// the first and the last bucket. `None` when a bucket would hold fewer than two blocks:
/// the raw fold is then cheap and closer to equal widths.
#[derive(Debug, PartialEq)]
struct BlockPlan {
    first: i64,
    last: i64,
    width: i64,
}

impl BlockPlan {
    fn new(lo: i64, hi: i64, buckets: usize) -> Option<BlockPlan> {
        let first = if lo.rem_euclid(BLOCK_STEPS) == 0 { block_of(lo) } else { block_of(lo) + 1 };
        let last = block_of(hi.checked_add(1)?) - 1;
        let blocks = last.checked_sub(first)?.checked_add(1)?;
        let buckets = i64::try_from(buckets.max(1)).ok()?;
        if blocks < 2 * buckets {
            return None;
        }
        Some(BlockPlan { first, last, width: (blocks + buckets - 1) / buckets })
    }

    fn buckets(&self) -> usize {
        ((self.last - self.first) / self.width + 1) as usize
    }

    fn bucket(&self, block: i64) -> usize {
        ((block - self.first) / self.width) as usize
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
        let sample = total as u64 > u64::from(request.max_points);
        let buckets = (request.max_points / 4) as usize;
        let plan = if sample && request.axis == HistoryAxis::Step { BlockPlan::new(lo, hi, buckets) } else { None };
        let points = match plan {
            Some(plan) => self.fold_blocks(run_id, key, lo, hi, &plan).await?,
            None => {
                let mut rows = sqlx::query(super::audited(format!("SELECT step, timestamp, value {filter} ORDER BY {order}"))).bind(run_id).bind(key);
                for bound in &bounds {
                    rows = rows.bind(*bound);
                }
                let mut rows = rows.fetch(&self.pool);
                let mut sampler = Sampler::new(lo, hi, buckets);
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
                if sample { sampler.finish() } else { all }
            }
        };
        out.sampled = sample;
        out.steps = points.iter().map(|p| p.step).collect();
        out.timestamps = points.iter().map(|p| p.timestamp).collect();
        out.values = points.iter().map(|p| p.value).collect();
        Ok(out)
    }
    /// The M4 fold of `lo..=hi` by step as `plan` says: the raw points before its first
    /// whole block, the blocks, the raw points after its last.
    async fn fold_blocks(&self, run_id: &str, key: &str, lo: i64, hi: i64, plan: &BlockPlan) -> Result<Vec<Point>> {
        let mut sampler = Sampler::new(lo, hi, plan.buckets());
        let mut order = 0u64;
        let mut push = |sampler: &mut Sampler, bucket: usize, mut point: Point| {
            point.order = order;
            order += 1;
            sampler.push_at(bucket, point);
        };
        let raw = |from: i64, to: i64| {
            sqlx::query("SELECT step, timestamp, value FROM metrics WHERE run_id = $1 AND key = $2 AND step >= $3 AND step <= $4 ORDER BY step, timestamp, seq")
                .bind(run_id.to_owned())
                .bind(key.to_owned())
                .bind(from)
                .bind(to)
                .fetch_all(&self.pool)
        };
        // A raw point's columns are `step`, …; a block's `first_step`, ….
        let point = |row: &sqlx::any::AnyRow, role: &str| -> Result<Point> {
            let column = |c: &str| if role.is_empty() { c.to_owned() } else { format!("{role}_{c}") };
            Ok(Point {
                order: 0,
                step: row.try_get(column("step").as_str())?,
                timestamp: row.try_get(column("timestamp").as_str())?,
                value: row.try_get(column("value").as_str())?,
            })
        };
        for row in raw(lo, plan.first * BLOCK_STEPS - 1).await? {
            push(&mut sampler, 0, point(&row, "")?);
        }
        let mut blocks = sqlx::query("SELECT * FROM metric_blocks WHERE run_id = $1 AND key = $2 AND block >= $3 AND block <= $4 ORDER BY block")
            .bind(run_id.to_owned())
            .bind(key.to_owned())
            .bind(plan.first)
            .bind(plan.last)
            .fetch(&self.pool);
        while let Some(row) = blocks.try_next().await? {
            let block = Block { first: point(&row, "first")?, last: point(&row, "last")?, low: point(&row, "low")?, high: point(&row, "high")? };
            let bucket = plan.bucket(row.try_get("block")?);
            for p in block.points() {
                push(&mut sampler, bucket, p);
            }
        }
        drop(blocks);
        for row in raw((plan.last + 1) * BLOCK_STEPS, hi).await? {
            push(&mut sampler, usize::MAX, point(&row, "")?);
        }
        Ok(sampler.finish())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kiln_api::LogBatch;

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
    /// Logged in batches, in any order; folded raw into buckets of whole blocks and folded
    /// from the blocks, the same points come out.
    #[test]
    fn blocks_fold_to_what_the_raw_points_do() {
        let value = |step: i64| match step {
            4_321 => 100.0,
            7_000 => -100.0,
            // Ties: a flat stretch, where the first of equal extremes must win either way.
            5_000..=5_999 => 0.5,
            _ => (step as f64 / 300.0).sin(),
        };
        // Steps 3..=10_009 (ragged ends), a second point at some steps (same step, later time).
        let mut logged: Vec<Point> = (3..=10_009).map(|s| Point { order: 0, step: s, timestamp: s * 10, value: value(s) }).collect();
        logged.extend((0..50).map(|i| Point { order: 0, step: i * 197 + 3, timestamp: i * 1970 + 31, value: -1.5 }));
        // Batches of 333 taken from the back: the store sees later steps first.
        logged.reverse();
        for (i, p) in logged.iter_mut().enumerate() {
            p.order = i as u64;
        }
        let mut blocks: BTreeMap<i64, Block> = BTreeMap::new();
        for batch in logged.chunks(333) {
            let mut batch_blocks: BTreeMap<i64, Block> = BTreeMap::new();
            for p in batch {
                batch_blocks.entry(block_of(p.step)).and_modify(|b| b.absorb(*p)).or_insert_with(|| Block::of(*p));
            }
            // What the upsert does with a stored block: every point of it came earlier.
            for (block, new) in batch_blocks {
                blocks.entry(block).and_modify(|b| b.merge_later(new)).or_insert(new);
            }
        }
        let mut in_order = logged.clone();
        in_order.sort_by_key(series_order);
        let (lo, hi) = (3, 10_009);
        for buckets in [1, 3, 50, 100, 155] {
            let plan = BlockPlan::new(lo, hi, buckets).expect("long enough for blocks");
            let mut raw = Sampler::new(lo, hi, plan.buckets());
            for (order, p) in in_order.iter().enumerate() {
                let block = block_of(p.step);
                let bucket = if block < plan.first {
                    0
                } else if block > plan.last {
                    usize::MAX
                } else {
                    plan.bucket(block)
                };
                raw.push_at(bucket, Point { order: order as u64, ..*p });
            }
            let mut folded = Sampler::new(lo, hi, plan.buckets());
            let mut order = 0;
            for p in in_order.iter().filter(|p| block_of(p.step) < plan.first) {
                folded.push_at(0, Point { order, ..*p });
                order += 1;
            }
            for (block, b) in blocks.range(plan.first..=plan.last) {
                for p in b.points() {
                    folded.push_at(plan.bucket(*block), Point { order, ..p });
                    order += 1;
                }
            }
            for p in in_order.iter().filter(|p| block_of(p.step) > plan.last) {
                folded.push_at(usize::MAX, Point { order, ..*p });
                order += 1;
            }
            let strip = |points: Vec<Point>| points.into_iter().map(|p| (p.step, p.timestamp, p.value)).collect::<Vec<_>>();
            let (raw, folded) = (strip(raw.finish()), strip(folded.finish()));
            assert_eq!(raw, folded, "{buckets} buckets");
            assert!(folded.contains(&(4_321, 43_210, 100.0)) && folded.contains(&(7_000, 70_000, -100.0)));
        }
    }

    #[test]
    fn ranges_too_short_for_two_blocks_a_bucket_are_folded_raw() {
        // (lo, hi, buckets) → (first whole block, last, blocks per bucket)
        let cases = [
            ((0, 9_999), 100, Some((0, 311, 4))),
            ((3, 10_009), 100, Some((1, 311, 4))),
            ((-64, 63), 2, Some((-2, 1, 2))),
            ((-65, 63), 2, Some((-2, 1, 2))),
            ((-64, 63), 1, Some((-2, 1, 4))),
            ((0, 6_399), 100, Some((0, 199, 2))),
            ((0, 6_398), 100, None),
            ((0, 31), 1, None),
            ((5, 5), 1, None),
            ((i64::MAX - 100, i64::MAX), 1, None),
        ];
        for ((lo, hi), buckets, expected) in cases {
            let plan = BlockPlan::new(lo, hi, buckets).map(|p| (p.first, p.last, p.width));
            assert_eq!(plan, expected, "{lo}..={hi} in {buckets}");
        }
    }

    /// A store made before `metric_blocks` gets them when it opens; the answer is the same.
    #[tokio::test]
    async fn an_older_store_gets_its_blocks_when_it_opens() {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}", dir.path().join("kiln.db").display());
        let request = |run: &str| HistoryRequest {
            runs: vec![run.to_owned()],
            keys: vec!["loss".into()],
            max_points: 100,
            axis: HistoryAxis::Step,
            from: None,
            to: None,
        };
        let (run, before) = {
            let store = Store::open(&url).await.expect("store");
            store.create_experiment("e").await.expect("experiment");
            let run = store
                .create_run(&kiln_api::CreateRun {
                    experiment: "e".into(),
                    name: Some("r".into()),
                    source: kiln_api::RunSource::Notebook,
                    start_time: None,
                    tags: vec![],
                })
                .await
                .expect("run")
                .id;
            for batch in 0..5 {
                let steps = batch * 1000..(batch + 1) * 1000;
                let metrics = steps
                    .map(|s| kiln_api::Metric { key: "loss".into(), value: if s == 777 { 9.0 } else { 1.0 / (1.0 + s as f64) }, timestamp: s, step: s })
                    .collect();
                store.log_batch(&run, &LogBatch { metrics, ..Default::default() }).await.expect("logged");
            }
            let before = store.histories(&request(&run)).await.expect("history");
            sqlx::query("DELETE FROM metric_blocks").execute(&store.pool).await.expect("blocks gone");
            store.close().await;
            (run, before)
        };
        let store = Store::open(&url).await.expect("reopened");
        let blocks: i64 = sqlx::query("SELECT COUNT(*) AS n FROM metric_blocks").fetch_one(&store.pool).await.expect("count").try_get("n").expect("n");
        assert_eq!(blocks, 157);
        let after = store.histories(&request(&run)).await.expect("history");
        assert_eq!(after, before);
        assert!(after.series[0].sampled && after.series[0].values.contains(&9.0));
    }
}
