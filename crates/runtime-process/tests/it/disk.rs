//! The profile's disk limit holds: a home is a file system of that size, which
//! `df` inside shows, which gives the app `ENOSPC` when full and breaks nothing
//! else, which grows when the limit is raised, and whose files survive stop,
//! start and another runtime instance.

use runtime::{Observed, Runtime};
use runtime_process::ProcessRuntime;

use crate::support::{read_json, Harness};

const MIB: u64 = 1 << 20;

#[tokio::test]
async fn a_home_fills_to_its_limit_and_grows_when_the_limit_is_raised() {
    let h = Harness::new(vec![]);
    let bystander = h.workspace("lena", 100_120, &[]);
    h.rt.start(&bystander).await.unwrap();
    h.wait_running(&bystander.id).await;

    let mut ws = h.workspace("mona", 100_121, &[("FILL", "1".into()), ("DF", "1".into())]);
    ws.profile.disk_quota_bytes = 64 * MIB;
    h.rt.start(&ws).await.unwrap();
    let df = read_json(&h.home(&ws.id).join("df.json")).await;
    assert!(
        !h.home(&ws.id).join("lost+found").exists(),
        "a new home shows no lost+found"
    );
    let size = df["size"].as_u64().unwrap();
    // The file system's own structures (journal, inode tables) take a little.
    assert!(
        (48 * MIB..=64 * MIB).contains(&size),
        "df inside shows {size} bytes for a 64 MiB limit"
    );
    let fill = read_json(&h.home(&ws.id).join("fill.json")).await;
    assert_eq!(fill["error"], "No space left on device", "{fill}");
    let written = fill["written_mb"].as_u64().unwrap();
    assert!((40..64).contains(&written), "wrote {written} MiB into 64");

    // The runtime reports the home full; the app and its neighbour still run.
    let disk = h.rt.disk(&ws.id).await.unwrap().expect("a mounted home");
    assert!(disk.is_full(), "{disk:?}");
    assert!(disk.size_bytes <= 64 * MIB, "{disk:?}");
    h.wait_running(&ws.id).await;
    assert!(matches!(
        h.rt.observe(&bystander.id).await.unwrap(),
        Observed::Running { .. }
    ));
    let roomy = h.rt.disk(&bystander.id).await.unwrap().unwrap();
    assert!(!roomy.is_full(), "{roomy:?}");

    // Another instance of the runtime (a restarted control plane) sees it too.
    let second = ProcessRuntime::new(h.config.clone()).unwrap();
    assert_eq!(second.disk(&ws.id).await.unwrap(), Some(disk));
    drop(second);

    // Raised to 128 MiB: after a stop and a start the home has grown and kept
    // its files; df inside says so.
    std::fs::remove_file(h.home(&ws.id).join("df.json")).unwrap();
    h.rt.stop(&ws.id).await.unwrap();
    assert_eq!(
        h.rt.disk(&ws.id).await.unwrap(),
        None,
        "unmounted when stopped"
    );
    assert_eq!(h.rt.observe(&ws.id).await.unwrap(), Observed::Stopped);
    ws.env.retain(|(k, _)| k != "FILL");
    ws.profile.disk_quota_bytes = 128 * MIB;
    h.rt.start(&ws).await.unwrap();
    let df = read_json(&h.home(&ws.id).join("df.json")).await;
    let grown = df["size"].as_u64().unwrap();
    assert!(
        (112 * MIB..=128 * MIB).contains(&grown),
        "df inside shows {grown} bytes for a 128 MiB limit"
    );
    assert!(df["avail"].as_u64().unwrap() > 48 * MIB, "{df}");
    let kept = std::fs::metadata(h.home(&ws.id).join("fill.bin"))
        .unwrap()
        .len();
    assert_eq!(
        kept,
        written * MIB,
        "the files survive stop, start and growth"
    );
    assert!(h
        .rt
        .log_tail(&ws.id, 64 * 1024)
        .contains("berth: the home grew from 64 MiB to 128 MiB"));
    h.wait_running(&ws.id).await;

    // A lower limit does not shrink it, and says so.
    std::fs::remove_file(h.home(&ws.id).join("df.json")).unwrap();
    h.rt.stop(&ws.id).await.unwrap();
    ws.profile.disk_quota_bytes = 64 * MIB;
    h.rt.start(&ws).await.unwrap();
    let df = read_json(&h.home(&ws.id).join("df.json")).await;
    assert_eq!(df["size"].as_u64().unwrap(), grown);
    assert!(h.rt.log_tail(&ws.id, 64 * 1024).contains(
        "berth: the home stays at 128 MiB: a home is not shrunk (the profile allows 64 MiB)"
    ));
}

/// A home made before disk limits (a plain directory) moves into an image of
/// the profile's size at its next start, with its files.
#[tokio::test]
async fn a_plain_home_moves_into_an_image_with_its_files() {
    let h = Harness::new(vec![]);
    let mut ws = h.workspace("nina", 100_122, &[("DF", "1".into())]);
    ws.profile.disk_quota_bytes = 64 * MIB;
    let home = h.home(&ws.id);
    std::fs::create_dir_all(home.join("project")).unwrap();
    std::fs::write(home.join("project/notes.md"), "kept").unwrap();
    std::os::unix::fs::chown(home.join("project"), Some(ws.uid), Some(ws.uid)).unwrap();
    h.rt.start(&ws).await.unwrap();
    let df = read_json(&home.join("df.json")).await;
    assert!(df["size"].as_u64().unwrap() <= 64 * MIB, "{df}");
    assert!(!home.join("lost+found").exists(), "no lost+found moved in");
    assert_eq!(
        std::fs::read_to_string(home.join("project/notes.md")).unwrap(),
        "kept"
    );
    let meta = std::fs::metadata(home.join("project")).unwrap();
    assert_eq!(
        std::os::unix::fs::MetadataExt::uid(&meta),
        ws.uid,
        "owners kept"
    );
}
