//! The journal on disk: numbered frames appended to segment files, one write and one
//! `fdatasync` per group commit, and segments the indexer has durably applied renamed and
//! written over again, so steady-state commits overwrite blocks already allocated and their
//! syncs carry no file-size or allocation changes.
//!
//! A frame is `len: u32 | crc32: u32 | pos: u64 | payload`, little-endian, the checksum taken
//! over `len`, `pos` and the payload. A segment is named after the position of its first
//! frame and holds consecutive positions; reading one stops at the first frame that is cut
//! off, fails its checksum or breaks the sequence, which is where the next frame is written.
//! A reused segment still holds frames of its earlier life, but their positions are older
//! than its name, so they never read as its own.
//!
//! A fresh store has no segment to reuse: its frames would be appended, and on this kind of
//! disk an appending sync takes about twice as long. So while the last segment is appended
//! to, a spare is filled with zeros on a thread of its own, and the journal moves to it at
//! the next frame once it is ready.

use crate::StoreError;
use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{BufReader, ErrorKind, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

/// Directory of the segment files inside the data directory.
pub const LOG_DIR: &str = "journal";
/// Bytes before each frame's payload.
pub(crate) const HEADER_BYTES: usize = 16;
/// Size a segment grows to before the next one is started.
pub(crate) const SEGMENT_BYTES: u64 = 32 << 20;
/// Applied segments kept for reuse; more are deleted.
const MAX_SPARES: usize = 2;
/// Largest buffer of pending frames kept between syncs.
const PENDING_KEPT_BYTES: usize = 4 << 20;
const SEGMENT_SUFFIX: &str = ".log";
const SPARE_PREFIX: &str = "spare-";
/// The spare filled with zeros ahead of use; at most one exists, as it is asked for only
/// while no spare is left.
const ZEROED_SPARE: &str = "spare-zeroed.log";
/// Where that spare is written until it is complete and on disk.
const PREPARING: &str = "spare-zeroed.tmp";
/// Zeros written (and synced) at a time: the journal's own syncs never wait behind a whole
/// segment's worth of them.
const ZERO_CHUNK_BYTES: usize = 1 << 20;
/// Share of a segment appended before a spare is prepared: a store that writes little (a
/// test's) never pays for a segment of zeros.
const PREPARE_AFTER_FRACTION: u64 = 8;

struct Segment {
    first_pos: u64,
    path: PathBuf,
}

/// The open journal: where the next frame goes.
pub(crate) struct Log {
    dir: PathBuf,
    segment_bytes: u64,
    /// Oldest first; frames are written to the last.
    segments: VecDeque<Segment>,
    file: File,
    /// Where the next frame of the last segment starts.
    offset: u64,
    /// How far the last segment may be filled before the next is started.
    capacity: u64,
    /// The position the next frame of the last segment must have.
    segment_next: u64,
    last_pos: u64,
    spares: Vec<PathBuf>,
    /// Frames added and not yet written, in order.
    pending: Vec<u8>,
    /// The last segment is shorter than its capacity, so frames are appended to it.
    appending: bool,
    /// Set once spares are prepared in the background (see [`Log::prepare_spares`]).
    preparer: Option<SparePreparer>,
}

/// The link to the thread that fills a spare with zeros.
struct SparePreparer {
    /// The thread filling a spare, while there is one; it yields the spare, or `None`.
    thread: Option<JoinHandle<Option<PathBuf>>>,
    /// The last preparation failed: not tried again before the next segment starts, so a
    /// full disk is not asked for 32 MiB at every sync.
    failed: bool,
    /// Set when the journal closes: the thread stops between chunks and removes its file.
    stop: Arc<AtomicBool>,
}

impl Drop for Log {
    /// Waits for a spare being prepared (at most a chunk), so no thread outlives the journal.
    fn drop(&mut self) {
        if let Some(preparer) = &mut self.preparer {
            preparer.stop.store(true, Ordering::Release);
            if let Some(thread) = preparer.thread.take() {
                let _ = thread.join();
            }
        }
    }
}

impl Log {
    /// Opens (creating when needed) the journal in `data_dir` and calls `apply` with every
    /// frame after `applied`, in order. Positions after `applied` must follow on from it
    /// without a gap: a missing one means the journal lost committed work.
    pub(crate) fn open(
        data_dir: &Path,
        segment_bytes: u64,
        applied: u64,
        mut apply: impl FnMut(u64, &[u8]) -> Result<(), StoreError>,
    ) -> Result<Self, StoreError> {
        let dir = data_dir.join(LOG_DIR);
        fs::create_dir_all(&dir).map_err(|e| io_error(&dir, &e))?;
        // Left by a stop in the middle of preparing a spare.
        let _ = fs::remove_file(dir.join(PREPARING));
        let (mut segments, spares) = list(&dir)?;
        let mut next_to_apply = applied + 1;
        let mut last_pos = applied;
        let mut tail = None;
        let count = segments.len();
        for (index, segment) in segments.iter().enumerate() {
            let is_last = index + 1 == count;
            // Every frame of a segment is older than the next segment's first.
            if !is_last && segments[index + 1].first_pos <= next_to_apply {
                continue;
            }
            let end = read_segment(segment, |pos, payload| {
                if pos < next_to_apply {
                    return Ok(());
                }
                if pos > next_to_apply {
                    return Err(StoreError::Corrupt(format!(
                        "journal positions {next_to_apply} to {} are missing",
                        pos - 1
                    )));
                }
                apply(pos, payload)?;
                next_to_apply += 1;
                Ok(())
            })?;
            last_pos = last_pos.max(end.last_pos.unwrap_or(0));
            if is_last {
                tail = Some(end);
            }
        }
        let (file, offset, file_bytes, segment_next) = if let Some(end) = tail {
            let Some(segment) = segments.back() else {
                return Err(StoreError::Corrupt("journal segment list changed".into()));
            };
            let file = open_segment(&segment.path)?;
            let len = file_len(&file, &segment.path)?;
            let next = end.last_pos.map_or(segment.first_pos, |pos| pos + 1);
            (file, end.offset, len, next)
        } else {
            let first = Segment {
                first_pos: last_pos + 1,
                path: segment_path(&dir, last_pos + 1),
            };
            let file = open_segment(&first.path)?;
            sync_dir(&dir)?;
            segments.push_back(first);
            (file, 0, 0, last_pos + 1)
        };
        let capacity = segment_bytes.max(file_bytes);
        Ok(Self {
            dir,
            segment_bytes,
            segments,
            file,
            offset,
            capacity,
            segment_next,
            last_pos,
            spares,
            pending: Vec::new(),
            appending: file_bytes < segment_bytes,
            preparer: None,
        })
    }

    /// From now on, whenever frames are appended (an eighth of a segment or more) and no
    /// spare is left, fills one with zeros on a thread of its own, for the journal to move to.
    pub(crate) fn prepare_spares(&mut self) {
        self.preparer = Some(SparePreparer {
            thread: None,
            failed: false,
            stop: Arc::new(AtomicBool::new(false)),
        });
        self.ask_for_spare();
    }

    fn ask_for_spare(&mut self) {
        let Some(preparer) = &mut self.preparer else {
            return;
        };
        if preparer.thread.is_some()
            || preparer.failed
            || !self.appending
            || !self.spares.is_empty()
            || self.offset < self.segment_bytes / PREPARE_AFTER_FRACTION
        {
            return;
        }
        let stop = Arc::clone(&preparer.stop);
        let dir = self.dir.clone();
        let bytes = self.segment_bytes;
        let spawned = std::thread::Builder::new()
            .name("beckon-journal-spare".into())
            .spawn(move || {
                write_zeroed_spare(&dir, bytes, &stop)
                    .map_err(|error| {
                        tracing::warn!(%error, "cannot prepare a journal segment; appending meanwhile");
                    })
                    .ok()
                    .flatten()
            });
        preparer.failed = spawned.is_err();
        preparer.thread = spawned.ok();
    }

    /// Takes the spare prepared since the last look, if its thread has finished; true when a
    /// spare is ready.
    fn take_prepared(&mut self) -> bool {
        if let Some(preparer) = &mut self.preparer {
            if let Some(thread) = preparer.thread.take_if(|thread| thread.is_finished()) {
                match thread.join() {
                    Ok(Some(spare)) => self.spares.push(spare),
                    Ok(None) | Err(_) => preparer.failed = true,
                }
            }
        }
        !self.spares.is_empty()
    }

    /// The newest position written (or applied before the journal was opened).
    pub(crate) fn last_pos(&self) -> u64 {
        self.last_pos
    }

    /// Adds `frame` (a payload after [`HEADER_BYTES`] of room, which this fills in) as position
    /// `pos`; it is written at the next [`Log::sync`].
    pub(crate) fn write(&mut self, pos: u64, frame: &mut [u8]) -> Result<(), StoreError> {
        let payload_len = frame
            .len()
            .checked_sub(HEADER_BYTES)
            .and_then(|len| u32::try_from(len).ok())
            .ok_or_else(|| {
                StoreError::Corrupt(format!("journal frame of {} bytes", frame.len()))
            })?;
        let end = self.offset + self.pending.len() as u64;
        // Off an appended segment as soon as a spare is ready (checked only while appending).
        let leave_appended =
            self.appending && end > 0 && self.preparer.is_some() && self.take_prepared();
        if pos != self.segment_next
            || (end > 0 && end + frame.len() as u64 > self.capacity)
            || leave_appended
        {
            self.sync()?;
            self.start_segment(pos)?;
        }
        frame[0..4].copy_from_slice(&payload_len.to_le_bytes());
        frame[8..16].copy_from_slice(&pos.to_le_bytes());
        let crc = checksum(&frame[0..4], &frame[8..16], &frame[HEADER_BYTES..]);
        frame[4..8].copy_from_slice(&crc.to_le_bytes());
        self.pending.extend_from_slice(frame);
        self.segment_next = pos + 1;
        self.last_pos = pos;
        Ok(())
    }

    /// Writes the frames added since the last call with one write, and waits until they are
    /// on disk.
    pub(crate) fn sync(&mut self) -> Result<(), StoreError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        // The path is only for the error message: not built on every sync.
        self.file
            .write_all_at(&self.pending, self.offset)
            .map_err(|e| io_error(self.current_path(), &e))?;
        self.file
            .sync_data()
            .map_err(|e| io_error(self.current_path(), &e))?;
        self.offset += self.pending.len() as u64;
        if self.appending {
            self.ask_for_spare();
        }
        // A rare large group should not keep its buffer.
        if self.pending.capacity() > PENDING_KEPT_BYTES {
            self.pending = Vec::new();
        } else {
            self.pending.clear();
        }
        Ok(())
    }

    /// Writes one frame and waits until it is on disk.
    #[cfg(test)]
    pub(crate) fn append(&mut self, pos: u64, frame: &mut [u8]) -> Result<(), StoreError> {
        self.write(pos, frame)?;
        self.sync()
    }

    /// Lets go of segments whose every frame is at or before `durable` (applied to the
    /// tables and on disk): kept as spares to write over, or deleted.
    pub(crate) fn forget_through(&mut self, durable: u64) -> Result<(), StoreError> {
        while self.segments.len() > 1 && self.segments[1].first_pos <= durable + 1 {
            let old = &self.segments[0];
            // A segment left before it was full would be appended to again.
            let full = fs::metadata(&old.path).is_ok_and(|meta| meta.len() >= self.segment_bytes);
            if full && self.spares.len() < MAX_SPARES {
                let spare = self.dir.join(format!(
                    "{SPARE_PREFIX}{:020}{SEGMENT_SUFFIX}",
                    old.first_pos
                ));
                fs::rename(&old.path, &spare).map_err(|e| io_error(&old.path, &e))?;
                self.spares.push(spare);
            } else {
                fs::remove_file(&old.path).map_err(|e| io_error(&old.path, &e))?;
            }
            self.segments.pop_front();
        }
        Ok(())
    }

    fn current_path(&self) -> &Path {
        self.segments
            .back()
            .map_or(self.dir.as_path(), |segment| segment.path.as_path())
    }

    /// Makes the segment written to next one whose first frame is `pos`: a spare (or a new
    /// file) under that name, or the current segment renamed while it holds no frame yet.
    fn start_segment(&mut self, pos: u64) -> Result<(), StoreError> {
        let path = segment_path(&self.dir, pos);
        let reuse_current = self.offset == 0;
        let source = if reuse_current {
            self.segments.pop_back().map(|segment| segment.path)
        } else {
            self.spares.pop()
        };
        if let Some(source) = source {
            fs::rename(&source, &path).map_err(|e| io_error(&source, &e))?;
        }
        let file = open_segment(&path)?;
        // The name must be on disk before a frame in it is acknowledged.
        sync_dir(&self.dir)?;
        let file_bytes = file_len(&file, &path)?;
        self.capacity = self.segment_bytes.max(file_bytes);
        self.appending = file_bytes < self.segment_bytes;
        self.file = file;
        self.offset = 0;
        self.segment_next = pos;
        self.segments.push_back(Segment {
            first_pos: pos,
            path,
        });
        if let Some(preparer) = &mut self.preparer {
            preparer.failed = false;
        }
        self.ask_for_spare();
        Ok(())
    }
}

/// Writes a spare segment of `bytes` zeros and makes it durable under its spare name; `None`
/// when `stop` was set first.
fn write_zeroed_spare(
    dir: &Path,
    bytes: u64,
    stop: &AtomicBool,
) -> Result<Option<PathBuf>, StoreError> {
    let preparing = dir.join(PREPARING);
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&preparing)
        .map_err(|e| io_error(&preparing, &e))?;
    let zeros = vec![0; ZERO_CHUNK_BYTES];
    let mut written = 0;
    while written < bytes {
        if stop.load(Ordering::Acquire) {
            drop(file);
            fs::remove_file(&preparing).map_err(|e| io_error(&preparing, &e))?;
            return Ok(None);
        }
        let chunk = usize::try_from(bytes - written)
            .map_or(ZERO_CHUNK_BYTES, |left| left.min(ZERO_CHUNK_BYTES));
        file.write_all_at(&zeros[..chunk], written)
            .and_then(|()| file.sync_data())
            .map_err(|e| io_error(&preparing, &e))?;
        written += chunk as u64;
    }
    let spare = dir.join(ZEROED_SPARE);
    fs::rename(&preparing, &spare).map_err(|e| io_error(&preparing, &e))?;
    sync_dir(dir)?;
    Ok(Some(spare))
}

/// Where reading a segment stopped.
struct SegmentEnd {
    offset: u64,
    last_pos: Option<u64>,
}

/// Calls `frame` with each of the segment's own frames, in order.
fn read_segment(
    segment: &Segment,
    mut frame: impl FnMut(u64, &[u8]) -> Result<(), StoreError>,
) -> Result<SegmentEnd, StoreError> {
    let file = File::open(&segment.path).map_err(|e| io_error(&segment.path, &e))?;
    let len = file_len(&file, &segment.path)?;
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let mut end = SegmentEnd {
        offset: 0,
        last_pos: None,
    };
    let mut header = [0u8; HEADER_BYTES];
    let mut payload = Vec::new();
    loop {
        if !read_exact_or_end(&mut reader, &mut header, &segment.path)? {
            return Ok(end);
        }
        let payload_len = u64::from(u32::from_le_bytes([
            header[0], header[1], header[2], header[3],
        ]));
        let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
        let pos = u64::from_le_bytes([
            header[8], header[9], header[10], header[11], header[12], header[13], header[14],
            header[15],
        ]);
        let expected = end.last_pos.map_or(segment.first_pos, |last| last + 1);
        let frame_end = end.offset + HEADER_BYTES as u64 + payload_len;
        if payload_len == 0 || pos != expected || frame_end > len {
            return Ok(end);
        }
        payload.resize(payload_len as usize, 0);
        if !read_exact_or_end(&mut reader, &mut payload, &segment.path)?
            || checksum(&header[0..4], &header[8..16], &payload) != crc
        {
            return Ok(end);
        }
        frame(pos, &payload)?;
        end.offset = frame_end;
        end.last_pos = Some(pos);
    }
}

/// Fills `buf`; `false` when the file ends first.
fn read_exact_or_end(
    reader: &mut impl Read,
    buf: &mut [u8],
    path: &Path,
) -> Result<bool, StoreError> {
    match reader.read_exact(buf) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == ErrorKind::UnexpectedEof => Ok(false),
        Err(e) => Err(io_error(path, &e)),
    }
}

fn checksum(len: &[u8], pos: &[u8], payload: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(len);
    hasher.update(pos);
    hasher.update(payload);
    hasher.finalize()
}

/// The segments, oldest first, and the spare files.
fn list(dir: &Path) -> Result<(VecDeque<Segment>, Vec<PathBuf>), StoreError> {
    let mut segments = Vec::new();
    let mut spares = Vec::new();
    for entry in fs::read_dir(dir).map_err(|e| io_error(dir, &e))? {
        let entry = entry.map_err(|e| io_error(dir, &e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some(stem) = name.strip_suffix(SEGMENT_SUFFIX) else {
            continue;
        };
        if stem.starts_with(SPARE_PREFIX) {
            spares.push(entry.path());
        } else if let Ok(first_pos) = stem.parse::<u64>() {
            segments.push(Segment {
                first_pos,
                path: entry.path(),
            });
        }
    }
    segments.sort_by_key(|segment| segment.first_pos);
    for extra in spares.split_off(spares.len().min(MAX_SPARES)) {
        fs::remove_file(&extra).map_err(|e| io_error(&extra, &e))?;
    }
    Ok((segments.into(), spares))
}

fn segment_path(dir: &Path, first_pos: u64) -> PathBuf {
    dir.join(format!("{first_pos:020}{SEGMENT_SUFFIX}"))
}

fn open_segment(path: &Path) -> Result<File, StoreError> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|e| io_error(path, &e))
}

fn file_len(file: &File, path: &Path) -> Result<u64, StoreError> {
    file.metadata()
        .map(|meta| meta.len())
        .map_err(|e| io_error(path, &e))
}

fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|dir| dir.sync_all())
        .map_err(|e| io_error(dir, &e))
}

fn io_error(path: &Path, error: &std::io::Error) -> StoreError {
    StoreError::Journal {
        path: path.to_owned(),
        message: error.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload(pos: u64) -> Vec<u8> {
        format!("frame {pos} {}", "x".repeat((pos % 7) as usize * 10)).into_bytes()
    }

    fn append(log: &mut Log, pos: u64) {
        let mut frame = vec![0; HEADER_BYTES];
        frame.extend_from_slice(&payload(pos));
        log.append(pos, &mut frame).expect("appends");
    }

    /// Opens the journal and returns it with the frames it replayed after `applied`.
    fn reopen(dir: &Path, segment_bytes: u64, applied: u64) -> (Log, Vec<(u64, Vec<u8>)>) {
        let mut seen = Vec::new();
        let log = Log::open(dir, segment_bytes, applied, |pos, bytes| {
            seen.push((pos, bytes.to_vec()));
            Ok(())
        })
        .expect("opens");
        (log, seen)
    }

    fn expected(positions: std::ops::RangeInclusive<u64>) -> Vec<(u64, Vec<u8>)> {
        positions.map(|pos| (pos, payload(pos))).collect()
    }

    fn segment_files(dir: &Path) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = fs::read_dir(dir.join(LOG_DIR))
            .expect("lists")
            .map(|entry| entry.expect("entry").path())
            .collect();
        files.sort();
        files
    }

    #[test]
    fn frames_after_the_applied_position_replay_in_order() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (mut log, seen) = reopen(dir.path(), SEGMENT_BYTES, 0);
        assert!(seen.is_empty());
        for pos in 1..=5 {
            append(&mut log, pos);
        }
        drop(log);
        let (log, seen) = reopen(dir.path(), SEGMENT_BYTES, 2);
        assert_eq!(seen, expected(3..=5));
        assert_eq!(log.last_pos(), 5);
    }

    #[test]
    fn a_cut_off_or_damaged_last_frame_is_where_the_next_one_goes() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (mut log, _) = reopen(dir.path(), SEGMENT_BYTES, 0);
        for pos in 1..=3 {
            append(&mut log, pos);
        }
        drop(log);
        let segment = segment_files(dir.path()).remove(0);
        let len = fs::metadata(&segment).expect("stat").len();
        // A crash in the middle of writing frame 3: only part of it reached the disk.
        let file = OpenOptions::new()
            .write(true)
            .open(&segment)
            .expect("opens");
        file.set_len(len - 3).expect("cuts");
        drop(file);
        let (mut log, seen) = reopen(dir.path(), SEGMENT_BYTES, 0);
        assert_eq!(seen, expected(1..=2));
        assert_eq!(log.last_pos(), 2);
        append(&mut log, 3);
        append(&mut log, 4);
        drop(log);

        // A flipped byte in the last frame's payload fails its checksum.
        let len = fs::metadata(&segment).expect("stat").len();
        let file = OpenOptions::new()
            .write(true)
            .open(&segment)
            .expect("opens");
        file.write_all_at(b"?", len - 1).expect("writes");
        drop(file);
        let (log, seen) = reopen(dir.path(), SEGMENT_BYTES, 0);
        assert_eq!(seen, expected(1..=3));
        assert_eq!(log.last_pos(), 3);
    }

    #[test]
    fn applied_segments_are_written_over_and_their_old_frames_never_read_as_new() {
        let dir = tempfile::tempdir().expect("temp dir");
        let small = 200;
        let (mut log, _) = reopen(dir.path(), small, 0);
        for pos in 1..=60 {
            append(&mut log, pos);
            // The indexer is durable a few frames behind.
            log.forget_through(pos.saturating_sub(5)).expect("forgets");
        }
        let files = segment_files(dir.path());
        let spares = files
            .iter()
            .filter(|path| path.to_string_lossy().contains(SPARE_PREFIX))
            .count();
        assert!(spares <= MAX_SPARES, "{files:?}");
        assert!(
            files.len() <= 6,
            "applied segments are let go of: {files:?}"
        );
        drop(log);
        let (mut log, seen) = reopen(dir.path(), small, 55);
        assert_eq!(seen, expected(56..=60));
        for pos in 61..=80 {
            append(&mut log, pos);
        }
        drop(log);
        let (_, seen) = reopen(dir.path(), small, 55);
        assert_eq!(seen, expected(56..=80));
    }

    #[test]
    fn frames_of_one_sync_that_fill_several_segments_are_all_written() {
        let dir = tempfile::tempdir().expect("temp dir");
        let small = 150;
        let (mut log, _) = reopen(dir.path(), small, 0);
        for pos in 1..=20 {
            let mut frame = vec![0; HEADER_BYTES];
            frame.extend_from_slice(&payload(pos));
            log.write(pos, &mut frame).expect("adds");
        }
        log.sync().expect("syncs");
        drop(log);
        assert!(segment_files(dir.path()).len() >= 5);
        let (log, seen) = reopen(dir.path(), small, 0);
        assert_eq!(seen, expected(1..=20));
        assert_eq!(log.last_pos(), 20);
    }

    #[test]
    fn a_missing_position_stops_the_journal_from_opening() {
        let dir = tempfile::tempdir().expect("temp dir");
        let small = 100;
        let (mut log, _) = reopen(dir.path(), small, 0);
        for pos in 1..=12 {
            append(&mut log, pos);
        }
        drop(log);
        let files = segment_files(dir.path());
        assert!(files.len() >= 3, "{files:?}");
        fs::remove_file(&files[1]).expect("removes");
        let error = Log::open(dir.path(), small, 0, |_, _| Ok(()))
            .err()
            .expect("refuses to open");
        assert!(error.to_string().contains("are missing"), "{error}");
    }

    #[test]
    fn an_appended_journal_moves_to_a_zeroed_spare_once_it_is_ready() {
        let dir = tempfile::tempdir().expect("temp dir");
        let small = 4096;
        let (mut log, _) = reopen(dir.path(), small, 0);
        log.prepare_spares();
        let mut pos = 0;
        // Nothing is prepared before an eighth of the segment is written.
        while log.offset < small / PREPARE_AFTER_FRACTION {
            assert!(log.preparer.as_ref().is_some_and(|p| p.thread.is_none()));
            pos += 1;
            append(&mut log, pos);
        }
        assert!(log.appending);
        let preparer = log.preparer.as_mut().expect("preparing");
        let spare = preparer
            .thread
            .take()
            .expect("preparing")
            .join()
            .expect("joins")
            .expect("written");
        assert_eq!(fs::metadata(&spare).expect("stat").len(), small);
        log.spares.push(spare);
        pos += 1;
        append(&mut log, pos);
        let moved_at = pos;
        assert!(!log.appending, "the journal moved to the zeroed segment");
        let current = segment_path(&dir.path().join(LOG_DIR), moved_at);
        assert_eq!(fs::metadata(&current).expect("stat").len(), small);
        for _ in 0..3 {
            pos += 1;
            append(&mut log, pos);
        }
        assert_eq!(fs::metadata(&current).expect("stat").len(), small);
        // The short appended segment is let go of, never kept to be appended to again.
        log.forget_through(moved_at - 1).expect("forgets");
        assert_eq!(segment_files(dir.path()), vec![current]);
        drop(log);
        let (_, seen) = reopen(dir.path(), small, moved_at - 1);
        assert_eq!(seen, expected(moved_at..=pos));
    }

    #[test]
    fn a_journal_closed_while_a_spare_is_prepared_leaves_no_part_of_it() {
        let dir = tempfile::tempdir().expect("temp dir");
        let segment = 16 << 20;
        let (mut log, _) = reopen(dir.path(), segment, 0);
        log.prepare_spares();
        let mut pos = 0;
        while log.preparer.as_ref().is_some_and(|p| p.thread.is_none()) {
            pos += 1;
            let mut frame = vec![0; HEADER_BYTES];
            frame.resize(HEADER_BYTES + (64 << 10), 7);
            log.append(pos, &mut frame).expect("appends");
        }
        drop(log);
        let journal = dir.path().join(LOG_DIR);
        assert!(!journal.join(PREPARING).exists());
        // Either finished before the close, whole, or not there at all.
        let spare = journal.join(ZEROED_SPARE);
        if spare.exists() {
            assert_eq!(fs::metadata(&spare).expect("stat").len(), segment);
        }
        let (_, seen) = reopen(dir.path(), segment, 0);
        assert_eq!(seen.len() as u64, pos);
    }

    #[test]
    fn a_spare_that_cannot_be_prepared_leaves_the_journal_appending_until_the_next_segment() {
        let dir = tempfile::tempdir().expect("temp dir");
        let small = 4096;
        let (mut log, _) = reopen(dir.path(), small, 0);
        // A directory where the spare is written makes preparing it fail.
        fs::create_dir(dir.path().join(LOG_DIR).join(PREPARING)).expect("creates");
        log.prepare_spares();
        let mut pos = 0;
        while log.preparer.as_ref().is_some_and(|p| p.thread.is_none()) {
            pos += 1;
            append(&mut log, pos);
        }
        // Waits for the failed preparation to end (it only has to open its file).
        while !log
            .preparer
            .as_ref()
            .and_then(|p| p.thread.as_ref())
            .is_some_and(JoinHandle::is_finished)
        {
            std::thread::yield_now();
        }
        pos += 1;
        append(&mut log, pos);
        assert!(log.preparer.as_ref().is_some_and(|p| p.failed));
        // Not asked again at every sync: the frames go on being appended.
        for _ in 0..5 {
            pos += 1;
            append(&mut log, pos);
            assert!(log.preparer.as_ref().is_some_and(|p| p.thread.is_none()));
        }
        assert!(log.appending);
        // A new segment is a new chance.
        while log.segments.len() == 1 {
            pos += 1;
            append(&mut log, pos);
        }
        assert!(log.preparer.as_ref().is_some_and(|p| !p.failed));
        drop(log);
        let (_, seen) = reopen(dir.path(), small, 0);
        assert_eq!(seen, expected(1..=pos));
    }

    #[test]
    fn a_spare_cut_off_while_it_was_prepared_is_removed_at_open() {
        let dir = tempfile::tempdir().expect("temp dir");
        let journal = dir.path().join(LOG_DIR);
        fs::create_dir_all(&journal).expect("creates");
        fs::write(journal.join(PREPARING), [0; 100]).expect("writes");
        let (mut log, _) = reopen(dir.path(), SEGMENT_BYTES, 0);
        append(&mut log, 1);
        assert_eq!(segment_files(dir.path()), vec![segment_path(&journal, 1)]);
    }

    #[test]
    fn tables_ahead_of_the_journal_start_a_new_segment() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (mut log, _) = reopen(dir.path(), SEGMENT_BYTES, 0);
        for pos in 1..=3 {
            append(&mut log, pos);
        }
        drop(log);
        // The tables were at 5 (an earlier version's journal held positions 4 and 5).
        let (mut log, seen) = reopen(dir.path(), SEGMENT_BYTES, 5);
        assert!(seen.is_empty());
        assert_eq!(log.last_pos(), 5);
        append(&mut log, 6);
        drop(log);
        let (_, seen) = reopen(dir.path(), SEGMENT_BYTES, 5);
        assert_eq!(seen, expected(6..=6));
    }
}
