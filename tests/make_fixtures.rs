//! Regenerates the committed test fixtures under `tests/fixtures/` from the full data mirror
//! (`make fixtures`; needs ../shared). Not part of `make test`: it writes into the repository.

use std::io::Write;
use std::path::Path;

const SHARED: &str = "../shared";
const OUT: &str = "tests/fixtures";

fn npy(shape: &[u64], data: &[f64]) -> Vec<u8> {
    use npyz::WriterBuilder;
    let mut buf = vec![];
    {
        let mut w = npyz::WriteOptions::new()
            .default_dtype()
            .shape(shape)
            .writer(&mut buf)
            .begin_nd()
            .unwrap();
        w.extend(data.iter().copied()).unwrap();
        w.finish().unwrap();
    }
    buf
}

fn crop16(src: &[f64], w: usize, (r0, c0): (usize, usize), n: usize) -> Vec<u16> {
    (r0..r0 + n)
        .flat_map(|r| (c0..c0 + n).map(move |c| (r, c)))
        .map(|(r, c)| src[r * w + c] as u16)
        .collect()
}

#[test]
#[ignore = "writes tests/fixtures from ../shared: run with `make fixtures`"]
fn make_fixtures() {
    let out = Path::new(OUT);
    let shared = Path::new(SHARED);
    std::fs::create_dir_all(out.join("models")).unwrap();
    // the original code's model, as is
    std::fs::copy(
        shared.join("models/ride1_bsds300.npz"),
        out.join("models/ride1_bsds300.npz"),
    )
    .unwrap();
    // a tile-sized fixture: the first tile, all its log-likelihoods, the hidden states of its
    // first 8 rows of cells
    let mut fx =
        ride::io::modelfile::Npz::open(&shared.join("models/ride1_bsds300_fixture.npz")).unwrap();
    let (_, tiles) = fx.array("tiles").unwrap();
    let wi = fx.expect("whitened_inputs", &[2, 62, 60, 12]).unwrap();
    let wo = fx.expect("whitened_outputs", &[2, 62, 60]).unwrap();
    let h0 = fx.expect("hidden.0", &[2, 62, 60, 64]).unwrap();
    let ll = fx.expect("loglik_nats", &[2, 62, 60]).unwrap();
    let rows = 8;
    let f = std::fs::File::create(out.join("models/ride1_bsds300_tile.npz")).unwrap();
    let mut z = zip::ZipWriter::new(f);
    let opts =
        zip::write::FileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    for (name, shape, data) in [
        ("tiles", vec![1, 64, 64], &tiles[..4096]),
        ("whitened_inputs", vec![1, 62, 60, 12], &wi[..62 * 60 * 12]),
        ("whitened_outputs", vec![1, 62, 60], &wo[..62 * 60]),
        (
            "hidden.0",
            vec![1, rows, 60, 64],
            &h0[..rows as usize * 60 * 64],
        ),
        ("loglik_nats", vec![1, 62, 60], &ll[..62 * 60]),
    ] {
        z.start_file(format!("{name}.npy"), opts).unwrap();
        z.write_all(&npy(&shape, data)).unwrap();
    }
    z.finish().unwrap();
    // BSDS300: the first two training and test JPEGs (by id), two gray test PNGs
    let data = shared.join("data");
    for split in ["train", "test"] {
        let ids = ride::data::bsds300::read_ids(&data, split.parse().unwrap()).unwrap();
        let dir = out.join("bsds300/images").join(split);
        std::fs::create_dir_all(&dir).unwrap();
        for id in ids.iter().take(2) {
            let f = format!("{id}.jpg");
            std::fs::copy(
                data.join("bsds300/images").join(split).join(&f),
                dir.join(&f),
            )
            .unwrap();
        }
    }
    let gray = out.join("bsds300/gray/test");
    std::fs::create_dir_all(&gray).unwrap();
    for id in ["101085", "101087"] {
        let f = format!("{id}.png");
        std::fs::copy(data.join("bsds300/gray/test").join(&f), gray.join(&f)).unwrap();
    }
    // van Hateren: 128×128 crops (raw 16-bit counts) of two images, as 16-bit PNGs
    let vh = out.join("vanhateren");
    std::fs::create_dir_all(&vh).unwrap();
    for id in ["imk00031", "imk00074"] {
        let raw =
            ride::data::vanhateren::read_iml(&data.join(format!("vanhateren/{id}.iml"))).unwrap();
        let px = crop16(&raw.data, raw.w, (448, 704), 128);
        image::ImageBuffer::<image::Luma<u16>, _>::from_raw(128, 128, px)
            .unwrap()
            .save(vh.join(format!("{id}_crop.png")))
            .unwrap();
    }
    // Brodatz: 128×128 crops of two plates, 8-bit gray PNGs
    let br = out.join("brodatz");
    std::fs::create_dir_all(&br).unwrap();
    for plate in ["D1", "D2", "D3"] {
        let g = ride::io::images::load_gray(
            &data.join(format!("brodatz/{plate}.gif")),
            ride::io::images::GrayMode::Pil,
        )
        .unwrap();
        let px: Vec<u8> = crop16(&g.data, g.w, (200, 200), 128)
            .into_iter()
            .map(|v| v as u8)
            .collect();
        image::GrayImage::from_raw(128, 128, px)
            .unwrap()
            .save(br.join(format!("{plate}_crop.png")))
            .unwrap();
    }
}
