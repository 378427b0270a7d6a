//! A home of fixed size: each workspace's home is an ext4 file system in a
//! sparse image file, `<data_dir>/disks/<id>.ext4`, loop-mounted at
//! `<data_dir>/homes/<id>` while the workspace runs.
//!
//! Why an image per home, not project quotas: project quotas need the data
//! directory on ext4 or XFS mounted with `prjquota`, which berth cannot count on
//! (nor change) on the machines it runs on; a loop-mounted image needs only root
//! and a file system with sparse files. Inside, `df` shows the limit and a full
//! home is `ENOSPC` to the app; outside, nothing else fills up. An image takes
//! only the space its files use, and grows (never shrinks) when the limit is
//! raised, at the next start: `resize2fs` on the unmounted image (online
//! growth needs `CAP_SYS_RESOURCE`, which berth may not have in a container).
//!
//! The tools are e2fsprogs' `mkfs.ext4`, `e2fsck` and `resize2fs`, and
//! util-linux's `mount` and `umount`: the reference
//! implementations, with no well-kept Rust equivalent, and they keep this crate
//! free of unsafe code. `mount -o loop` reuses the loop device that already
//! backs an image, so an image is never attached twice.
//!
//! A home made before disk limits (a plain directory with files) is moved into
//! a new image on its next start, by copying; if its files do not fit, it stays
//! a plain directory, without a limit, and the start log says so.

use std::path::{Path, PathBuf};

use crate::exec::{self, ExecError};

/// Where one workspace's home lives.
#[derive(Debug, Clone)]
pub struct Home {
    /// The mount point, which the sandbox binds as `/home/<owner>`.
    pub dir: PathBuf,
    /// The ext4 image.
    pub image: PathBuf,
}

/// What [`Home::ensure`] did, for the workspace's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ensured {
    /// Mounted, at the wanted size.
    Ready,
    /// Grown from the old size to the new.
    Grown { from: u64, to: u64 },
    /// Larger than wanted: a home is not shrunk.
    Larger { size: u64 },
    /// Still in use on the host (a shell inside it), so not grown this time.
    GrowLater { size: u64, wanted: u64 },
    /// A plain directory whose files did not fit the limit: no limit applies.
    Unlimited { reason: String },
}

impl Home {
    pub fn new(data_dir: &Path, id: &str) -> Self {
        Home {
            dir: data_dir.join("homes").join(id),
            image: data_dir.join("disks").join(format!("{id}.ext4")),
        }
    }

    /// Makes the home an image of at least `size_bytes`, owned by `uid`, and
    /// mounts it at [`Home::dir`].
    pub async fn ensure(&self, uid: u32, size_bytes: u64) -> Result<Ensured, DiskError> {
        std::fs::create_dir_all(&self.dir)?;
        self.finish_migration()?;
        let mut made = false;
        if !self.image.exists() {
            if !is_mounted(&self.dir)? && has_entries(&self.dir)? {
                if let Err(reason) = self.migrate(uid, size_bytes).await {
                    return Ok(Ensured::Unlimited { reason });
                }
            } else {
                make_image(&self.image, uid, size_bytes).await?;
                made = true;
            }
        }
        let mut len = std::fs::metadata(&self.image)?.len();
        let mut ensured = Ensured::Ready;
        if len < size_bytes {
            // The file first: a crash after this leaves a larger file, whose
            // file system the next start grows (below).
            std::fs::OpenOptions::new()
                .write(true)
                .open(&self.image)?
                .set_len(size_bytes)?;
            len = size_bytes;
        }
        let fs_bytes = fs_bytes(&self.image).await?;
        if fs_bytes < len {
            // Offline: online growth needs CAP_SYS_RESOURCE, which berth may
            // lack (in a container), and the home is unmounted while stopped.
            self.unmount().await?;
            // A mount namespace of the last run, or a lazily detached mount,
            // may still hold the file system for a moment after its
            // processes died; resizing it under the kernel would corrupt it.
            if !released(&self.image, RELEASE_WAIT).await? {
                self.mount().await?;
                return Ok(Ensured::GrowLater {
                    size: fs_bytes,
                    wanted: len,
                });
            }
            let image = path_str(&self.image)?;
            fsck(image).await?;
            exec::run("resize2fs", &[image]).await?;
            ensured = Ensured::Grown {
                from: fs_bytes,
                to: len,
            };
        } else if len > size_bytes {
            ensured = Ensured::Larger { size: len };
        }
        self.mount().await?;
        if made {
            remove_lost_and_found(&self.dir)?;
        }
        // The workspace uid owns its home's root, whoever made it.
        std::os::unix::fs::chown(&self.dir, Some(uid), Some(uid))?;
        std::fs::set_permissions(
            &self.dir,
            std::os::unix::fs::PermissionsExt::from_mode(0o700),
        )?;
        Ok(ensured)
    }

    /// Mounts the image at the home's directory, unless it is mounted there.
    async fn mount(&self) -> Result<(), DiskError> {
        if is_mounted(&self.dir)? {
            return Ok(());
        }
        let (image, dir) = (path_str(&self.image)?, path_str(&self.dir)?);
        exec::run("mount", &["-o", "loop,nosuid,nodev", image, dir]).await?;
        Ok(())
    }

    /// Unmounts the home (a no-op if it is not mounted). A host process still
    /// inside it (a shell, a backup) does not block a stop: the mount is then
    /// detached lazily and goes when they leave; the next mount reuses its
    /// loop device.
    pub async fn unmount(&self) -> Result<(), DiskError> {
        if !is_mounted(&self.dir)? {
            return Ok(());
        }
        let dir = path_str(&self.dir)?;
        match exec::run("umount", &[dir]).await {
            Ok(_) => Ok(()),
            Err(e) if e.stderr_contains("busy") => {
                tracing::warn!(home = dir, "home busy on the host; detaching it lazily");
                exec::run("umount", &["-l", dir]).await?;
                Ok(())
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Space of the mounted home; `NotMounted` when it is not.
    pub fn space(&self) -> Result<runtime::Disk, DiskError> {
        if !is_mounted(&self.dir)? {
            return Err(DiskError::NotMounted);
        }
        let s = rustix::fs::statvfs(&self.dir).map_err(std::io::Error::from)?;
        let block = s.f_frsize;
        Ok(runtime::Disk {
            size_bytes: s.f_blocks * block,
            used_bytes: (s.f_blocks - s.f_bfree) * block,
            available_bytes: s.f_bavail * block,
        })
    }

    /// Where a migration copies a plain home to, and where the plain home
    /// waits until the copy is the home.
    fn migration_paths(&self) -> (PathBuf, PathBuf, PathBuf) {
        let new = self.image.with_extension("ext4.new");
        let staging = self.image.with_extension("migrating");
        let old = self.dir.with_extension("plain");
        (new, staging, old)
    }

    /// Ends a migration that a crash interrupted: a plain home set aside
    /// after the image became the home goes; a half-made image goes too (the
    /// plain home is still in place and is migrated again).
    fn finish_migration(&self) -> Result<(), DiskError> {
        let (new, staging, old) = self.migration_paths();
        if self.image.exists() && old.exists() {
            std::fs::remove_dir_all(&old)?;
        }
        if new.exists() {
            std::fs::remove_file(&new)?;
        }
        if staging.exists() && !is_mounted(&staging)? {
            std::fs::remove_dir(&staging)?;
        }
        Ok(())
    }

    /// Copies a plain home into a new image, which then becomes the home.
    /// `Err` (with why, for the log) when it cannot; the plain home is then
    /// left as it was.
    async fn migrate(&self, uid: u32, size_bytes: u64) -> Result<(), String> {
        let (new, staging, old) = self.migration_paths();
        let copied = async {
            make_image(&new, uid, size_bytes).await?;
            std::fs::create_dir_all(&staging)?;
            let (new_s, staging_s) = (path_str(&new)?, path_str(&staging)?);
            exec::run("mount", &["-o", "loop,nosuid,nodev", new_s, staging_s]).await?;
            remove_lost_and_found(&staging)?;
            let from = format!("{}/.", path_str(&self.dir)?);
            let copy = exec::run("cp", &["-a", &from, staging_s]).await;
            exec::run("umount", &[staging_s]).await?;
            copy?;
            Ok::<(), DiskError>(())
        }
        .await;
        if let Err(e) = copied {
            let _ = std::fs::remove_file(&new);
            let _ = std::fs::remove_dir(&staging);
            return Err(format!(
                "its files could not be moved into a home of {} ({e}); it stays without a limit",
                model::bytes(size_bytes)
            ));
        }
        let done = (|| {
            std::fs::rename(&self.dir, &old)?;
            std::fs::rename(&new, &self.image)?;
            std::fs::create_dir_all(&self.dir)?;
            std::fs::remove_dir(&staging)?;
            std::fs::remove_dir_all(&old)
        })();
        done.map_err(|e| format!("moving the home into its image: {e}"))
    }

    /// Unmounts and removes the image and the mount point.
    pub async fn remove(&self) -> Result<(), DiskError> {
        self.unmount().await?;
        remove_if_there(&self.image)?;
        match std::fs::remove_dir_all(&self.dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Unmounts the home and moves its image (or plain directory) to `to`
    /// (`to` with `.ext4` for an image).
    pub async fn keep(&self, to: &Path) -> Result<(), DiskError> {
        self.unmount().await?;
        if self.image.exists() {
            std::fs::rename(&self.image, to.with_extension("ext4"))?;
            match std::fs::remove_dir(&self.dir) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e.into()),
            }
        } else if self.dir.exists() {
            std::fs::rename(&self.dir, to)?;
        }
        Ok(())
    }
}

/// How long a start waits for the last run's hold on an image to go.
const RELEASE_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// Waits until no loop device is backed by `image` (the kernel has let go of
/// its file system); `false` if one still is after `wait`.
async fn released(image: &Path, wait: std::time::Duration) -> Result<bool, DiskError> {
    let image = std::fs::canonicalize(image)?;
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        if !backs_a_loop_device(&image)? {
            return Ok(true);
        }
        if tokio::time::Instant::now() >= deadline {
            return Ok(false);
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// Whether a loop device's backing file is `image`, from
/// `/sys/block/loop*/loop/backing_file`.
fn backs_a_loop_device(image: &Path) -> std::io::Result<bool> {
    for entry in std::fs::read_dir("/sys/block")? {
        let backing = entry?.path().join("loop/backing_file");
        match std::fs::read_to_string(&backing) {
            Ok(file) if Path::new(file.trim_end_matches('\n')) == image => return Ok(true),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(false)
}

/// The size of the file system in `image`, from its superblock (read here:
/// `dumpe2fs` at every start cost a process).
async fn fs_bytes(image: &Path) -> Result<u64, DiskError> {
    use std::io::{Read, Seek, SeekFrom};
    let mut superblock = [0u8; 1024];
    let mut file = std::fs::File::open(image)?;
    file.seek(SeekFrom::Start(1024))?;
    file.read_exact(&mut superblock)?;
    ext4_bytes(&superblock).ok_or_else(|| DiskError::Superblock(image.to_owned()))
}

/// The size an ext4 superblock (the 1024 bytes at offset 1024) gives: block
/// count (with its high half where the `64bit` feature is on) times block size.
fn ext4_bytes(sb: &[u8; 1024]) -> Option<u64> {
    let le32 = |at: usize| u32::from_le_bytes(sb[at..at + 4].try_into().unwrap());
    const MAGIC: u16 = 0xEF53;
    const INCOMPAT_64BIT: u32 = 0x80;
    if u16::from_le_bytes([sb[0x38], sb[0x39]]) != MAGIC {
        return None;
    }
    let mut blocks = u64::from(le32(0x04));
    if le32(0x60) & INCOMPAT_64BIT != 0 {
        blocks |= u64::from(le32(0x150)) << 32;
    }
    let log = le32(0x18);
    (log <= 6).then(|| blocks * (1024u64 << log))
}

/// Checks an unmounted image, fixing what is safe to fix (`e2fsck -p`); exit
/// status 1 means it fixed something, which is fine.
async fn fsck(image: &str) -> Result<(), DiskError> {
    match exec::run("e2fsck", &["-f", "-p", image]).await {
        Ok(_) => Ok(()),
        Err(ExecError::Failed { status, .. }) if status.code() == Some(1) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Makes a sparse image of `size_bytes` with an ext4 file system whose root
/// `uid` owns, without the blocks ext4 reserves for root (the home is all the
/// workspace's). Its `lost+found` goes at its first mount
/// ([`remove_lost_and_found`]).
async fn make_image(image: &Path, uid: u32, size_bytes: u64) -> Result<(), DiskError> {
    if let Some(dir) = image.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = image.with_extension("ext4.tmp");
    std::fs::File::create(&tmp)?.set_len(size_bytes)?;
    let owner = format!("root_owner={uid}:{uid},lazy_itable_init=1,lazy_journal_init=1");
    exec::run(
        "mkfs.ext4",
        &[
            "-q",
            "-F",
            "-m",
            "0",
            "-L",
            "berth-home",
            "-E",
            &owner,
            path_str(&tmp)?,
        ],
    )
    .await?;
    std::fs::rename(&tmp, image)?;
    Ok(())
}

/// Removes the empty `lost+found` of a new file system mounted at `root`:
/// it would show in every home, and e2fsck recreates it if it ever needs it.
/// One syscall where `debugfs` on the unmounted image was a program per home.
fn remove_lost_and_found(root: &Path) -> Result<(), DiskError> {
    match std::fs::remove_dir(root.join("lost+found")) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
        _ => Ok(()),
    }
}

fn remove_if_there(path: &Path) -> Result<(), DiskError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e.into()),
    }
}

fn has_entries(dir: &Path) -> std::io::Result<bool> {
    Ok(std::fs::read_dir(dir)?.next().is_some())
}

fn path_str(p: &Path) -> Result<&str, DiskError> {
    p.to_str().ok_or_else(|| DiskError::Path(p.to_owned()))
}

/// Whether something is mounted at `dir` (in this mount namespace): whether
/// it is the root of a mount, which `statx` says (Linux 5.8 and later) or,
/// on older kernels, whether it is on another device than its parent. One
/// system call, where reading `/proc/self/mountinfo` cost time in the number
/// of mounts (every running home is one).
pub fn is_mounted(dir: &Path) -> std::io::Result<bool> {
    use rustix::fs::{statx, AtFlags, StatxAttributes, StatxFlags, CWD};
    let at = match statx(CWD, dir, AtFlags::SYMLINK_NOFOLLOW, StatxFlags::BASIC_STATS) {
        Ok(at) => at,
        Err(rustix::io::Errno::NOENT) => return Ok(false),
        Err(e) => return Err(e.into()),
    };
    if at.stx_attributes_mask.contains(StatxAttributes::MOUNT_ROOT) {
        return Ok(at.stx_attributes.contains(StatxAttributes::MOUNT_ROOT));
    }
    let parent = statx(
        CWD,
        dir.join(".."),
        AtFlags::empty(),
        StatxFlags::BASIC_STATS,
    )?;
    Ok((at.stx_dev_major, at.stx_dev_minor) != (parent.stx_dev_major, parent.stx_dev_minor))
}

#[derive(Debug, thiserror::Error)]
pub enum DiskError {
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Exec(#[from] ExecError),
    #[error("the home is not mounted")]
    NotMounted,
    #[error("path {0:?} is not UTF-8")]
    Path(PathBuf),
    #[error("{0:?} holds no ext4 superblock")]
    Superblock(PathBuf),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ext4_superblock_gives_its_size() {
        let mut sb = [0u8; 1024];
        assert_eq!(ext4_bytes(&sb), None, "no magic");
        sb[0x38..0x3a].copy_from_slice(&0xEF53u16.to_le_bytes());
        sb[0x04..0x08].copy_from_slice(&5_242_880u32.to_le_bytes());
        sb[0x18..0x1c].copy_from_slice(&2u32.to_le_bytes()); // 4 KiB blocks
        assert_eq!(ext4_bytes(&sb), Some(20 << 30));
        // The high half counts only with the 64bit feature.
        sb[0x150..0x154].copy_from_slice(&1u32.to_le_bytes());
        assert_eq!(ext4_bytes(&sb), Some(20 << 30));
        sb[0x60..0x64].copy_from_slice(&0x80u32.to_le_bytes());
        assert_eq!(ext4_bytes(&sb), Some((20 << 30) + (4096u64 << 32)));
    }

    /// The same size as `dumpe2fs` reads, on an image `mkfs.ext4` made.
    #[tokio::test]
    async fn the_size_of_a_made_image_is_what_dumpe2fs_says() {
        let dir = tempfile::tempdir().unwrap();
        let image = dir.path().join("home.ext4");
        make_image(&image, 4242, 64 << 20).await.unwrap();
        let header = exec::run("dumpe2fs", &["-h", image.to_str().unwrap()])
            .await
            .unwrap();
        let field = |name: &str| {
            header
                .lines()
                .find_map(|l| l.strip_prefix(name)?.trim().parse::<u64>().ok())
                .unwrap()
        };
        assert_eq!(
            fs_bytes(&image).await.unwrap(),
            field("Block count:") * field("Block size:")
        );
        assert_eq!(fs_bytes(&image).await.unwrap(), 64 << 20);
    }

    #[test]
    fn a_mount_root_is_mounted_and_a_directory_is_not() {
        assert!(is_mounted(Path::new("/proc")).unwrap());
        let dir = tempfile::tempdir().unwrap();
        assert!(!is_mounted(dir.path()).unwrap());
        assert!(!is_mounted(&dir.path().join("missing")).unwrap());
    }
}
