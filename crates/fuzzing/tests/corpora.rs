//! Replays every committed fuzz corpus input (`fuzz/corpus/<target>/`) and every crash input
//! kept as a regression (`fuzz/regressions/<target>/`) through its target, on stable: an
//! input that once found new coverage or a bug is checked on every CI run.

use std::path::Path;

fn inputs(dir: &Path) -> Vec<std::path::PathBuf> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut v: Vec<_> = rd.filter_map(|e| e.ok()).map(|e| e.path()).collect();
    v.sort();
    v
}

#[test]
fn every_corpus_input_replays_cleanly() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
    let mut total = 0;
    for (name, target) in livetape_fuzzing::TARGETS {
        let corpus = inputs(&root.join("corpus").join(name));
        assert!(
            !corpus.is_empty(),
            "fuzz/corpus/{name} is empty: run scripts/fuzz.sh and commit the corpus"
        );
        for p in corpus
            .iter()
            .chain(inputs(&root.join("regressions").join(name)).iter())
        {
            let data = std::fs::read(p).unwrap();
            target(&data);
            total += 1;
        }
    }
    println!("{total} inputs replayed");
}
