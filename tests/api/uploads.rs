//! Photo uploads: decoded and re-encoded (fakes refused, EXIF and GPS gone), one `file` field
//! only, nothing left on disk by a refused upload.

use std::io::{Read, Write};

use image::{DynamicImage, ImageFormat, RgbImage};
use reqwest::StatusCode;
use serde_json::Value;

use crate::both_backends;
use crate::helpers::{error_code, TestApp};
use crate::tickets::{create, upload, world};

both_backends!(
    fake_images_are_refused_and_leave_nothing,
    exif_and_gps_are_gone_after_upload,
    a_field_not_named_file_is_refused_without_reading_it,
);

fn picture(w: u32, h: u32) -> DynamicImage {
    DynamicImage::ImageRgb8(RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([(x * 7) as u8, (y * 5) as u8, ((x + y) * 3) as u8])
    }))
}

fn encode(img: &DynamicImage, format: ImageFormat) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, format).expect("encode");
    out.into_inner()
}

/// A real 16 × 16 PNG.
pub fn png() -> Vec<u8> {
    encode(&picture(16, 16), ImageFormat::Png)
}

/// The decoded pixels of an image, to compare pictures rather than files.
pub fn pixels(bytes: &[u8]) -> Vec<u8> {
    image::load_from_memory(bytes)
        .expect("decodes")
        .to_rgba8()
        .into_raw()
}

/// The attachments directory holds exactly `n` files, none of them temporary.
pub fn assert_stored_files(app: &TestApp, n: usize) {
    let dir = app.settings.data.dir.join("attachments");
    let names: Vec<String> = match std::fs::read_dir(&dir) {
        Ok(entries) => entries
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => Vec::new(),
    };
    assert_eq!(names.len(), n, "{names:?}");
    assert!(names.iter().all(|n| !n.starts_with('.')), "{names:?}");
    for name in &names {
        let len = std::fs::metadata(dir.join(name)).expect("meta").len();
        assert!(len > 0, "empty file {name}");
    }
}

/// The ticket has no photo, in the database or on disk.
async fn assert_no_photos(app: &TestApp, token: &str, id: i64) {
    let (_, list) = app
        .get(&format!("/api/v1/tickets/{id}/attachments"), Some(token))
        .await;
    assert_eq!(list, Value::Array(vec![]));
    assert_stored_files(app, 0);
}

/// A JPEG with an EXIF block (APP1) carrying a GPS position, 39°54'27.12"N, written by hand
/// the way a phone camera writes it: TIFF header, IFD0 with a GPS IFD pointer, the GPS IFD.
fn jpeg_with_gps() -> Vec<u8> {
    let plain = encode(&picture(32, 24), ImageFormat::Jpeg);
    let mut tiff = Vec::new();
    tiff.extend_from_slice(b"MM\x00\x2a");
    tiff.extend_from_slice(&8u32.to_be_bytes());
    // IFD0: one entry, GPSInfo (0x8825, LONG) → the GPS IFD at 26.
    tiff.extend_from_slice(&1u16.to_be_bytes());
    tiff.extend_from_slice(&[0x88, 0x25, 0x00, 0x04]);
    tiff.extend_from_slice(&1u32.to_be_bytes());
    tiff.extend_from_slice(&26u32.to_be_bytes());
    tiff.extend_from_slice(&0u32.to_be_bytes());
    // GPS IFD: GPSLatitudeRef "N" (ASCII, inline) and GPSLatitude (3 RATIONALs at 56).
    tiff.extend_from_slice(&2u16.to_be_bytes());
    tiff.extend_from_slice(&[0x00, 0x01, 0x00, 0x02]);
    tiff.extend_from_slice(&2u32.to_be_bytes());
    tiff.extend_from_slice(b"N\x00\x00\x00");
    tiff.extend_from_slice(&[0x00, 0x02, 0x00, 0x05]);
    tiff.extend_from_slice(&3u32.to_be_bytes());
    tiff.extend_from_slice(&56u32.to_be_bytes());
    tiff.extend_from_slice(&0u32.to_be_bytes());
    assert_eq!(tiff.len(), 56);
    for (num, den) in [(39u32, 1u32), (54, 1), (2712, 100)] {
        tiff.extend_from_slice(&num.to_be_bytes());
        tiff.extend_from_slice(&den.to_be_bytes());
    }
    let mut app1 = b"Exif\x00\x00".to_vec();
    app1.extend_from_slice(&tiff);
    let mut out = vec![0xFF, 0xD8, 0xFF, 0xE1];
    out.extend_from_slice(&((app1.len() + 2) as u16).to_be_bytes());
    out.extend_from_slice(&app1);
    out.extend_from_slice(&plain[2..]);
    out
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

async fn fake_images_are_refused_and_leave_nothing(app: TestApp) {
    let w = world(&app).await;
    let id = create(&app, &w, "假图片").await["id"].as_i64().expect("id");
    let mut polyglot = png()[..33].to_vec();
    polyglot.extend_from_slice(b"<html><script>alert(document.cookie)</script></html>");
    let mut php = vec![0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10];
    php.extend_from_slice(b"JFIF\x00<?php system($_GET['c']); ?>");
    let webp12 = b"RIFF\x04\x00\x00\x00WEBP".to_vec();
    // A valid PNG header announcing 60000 × 60000 pixels (10 GB decoded) and almost no data.
    let mut bomb = png()[..16].to_vec();
    bomb.extend_from_slice(&60000u32.to_be_bytes());
    bomb.extend_from_slice(&60000u32.to_be_bytes());
    bomb.extend_from_slice(&[8, 2, 0, 0, 0]);
    let crc = crc32(&bomb[12..29]);
    bomb.extend_from_slice(&crc.to_be_bytes());
    bomb.extend_from_slice(&png()[33..]);
    let mut truncated = png();
    truncated.truncate(truncated.len() - 20);
    for (name, bytes) in [
        ("polyglot.png", polyglot),
        ("shell.jpg", php),
        ("tiny.webp", webp12),
        ("bomb.png", bomb),
        ("truncated.png", truncated),
    ] {
        let (s, v) = upload(&app, &w.resident, id, bytes, name).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{name}: {v}");
        assert_eq!(error_code(&v), "unsupported_file_type", "{name}");
    }
    assert_no_photos(&app, &w.resident, id).await;
    // A real WebP is taken, and stored as a JPEG.
    let webp = encode(&picture(20, 10), ImageFormat::WebP);
    let (s, v) = upload(&app, &w.resident, id, webp, "ok.webp").await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["content_type"], "image/jpeg");
    assert_stored_files(&app, 1);
}

/// CRC-32 (IEEE) of a PNG chunk's type and data, so the bomb's header is itself valid.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

async fn exif_and_gps_are_gone_after_upload(app: TestApp) {
    let w = world(&app).await;
    let id = create(&app, &w, "带定位的照片").await["id"]
        .as_i64()
        .expect("id");
    let original = jpeg_with_gps();
    assert!(contains(&original, b"Exif\x00\x00"));
    let (s, v) = upload(&app, &w.resident, id, original.clone(), "IMG_0001.jpg").await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["content_type"], "image/jpeg");
    let r = app
        .client
        .get(format!("{}{}", app.base, v["url"].as_str().expect("url")))
        .bearer_auth(&w.resident)
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), StatusCode::OK);
    let stored = r.bytes().await.expect("bytes").to_vec();
    assert!(!contains(&stored, b"Exif"), "EXIF kept");
    assert!(!contains(&stored, &[0xFF, 0xE1]), "an APP1 segment kept");
    assert!(!contains(&stored, &2712u32.to_be_bytes()), "GPS kept");
    let img = image::load_from_memory(&stored).expect("a JPEG");
    assert_eq!((img.width(), img.height()), (32, 24));
    assert_eq!(v["size_bytes"].as_u64(), Some(stored.len() as u64));
}

/// The request is written by hand on a socket: a 100 MB part named `other`, then a valid
/// `file`. The writer is paced (about 64 MB/s) and stops once an answer arrives: the server must
/// answer 422 long before the 100 MB are through (the old code read them all, then took the
/// `file` and answered 201), and store nothing.
async fn a_field_not_named_file_is_refused_without_reading_it(app: TestApp) {
    let w = world(&app).await;
    let id = create(&app, &w, "多余字段").await["id"]
        .as_i64()
        .expect("id");
    // A small stray field is refused with a JSON error.
    let form = reqwest::multipart::Form::new().text("note", "hello").part(
        "file",
        reqwest::multipart::Part::bytes(png()).file_name("a.png"),
    );
    let r = app
        .client
        .post(format!("{}/api/v1/tickets/{id}/attachments", app.base))
        .bearer_auth(&w.resident)
        .multipart(form)
        .send()
        .await
        .expect("upload");
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let v: Value = r.json().await.expect("json");
    assert_eq!(error_code(&v), "unexpected_field");

    const JUNK: usize = 100 * 1024 * 1024;
    let addr = app.base.trim_start_matches("http://").to_string();
    let token = w.resident.clone();
    let (written, answer) = tokio::task::spawn_blocking(move || {
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::sync::Arc;
        let boundary = "huyingboundary";
        let head = format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"other\"; filename=\"x.bin\"\r\n\
             Content-Type: application/octet-stream\r\n\r\n"
        );
        let mut tail = format!(
            "\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.png\"\r\n\
             Content-Type: image/png\r\n\r\n"
        )
        .into_bytes();
        tail.extend_from_slice(&png());
        tail.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        let mut s = std::net::TcpStream::connect(&addr).expect("connect");
        s.set_write_timeout(Some(std::time::Duration::from_secs(3)))
            .expect("timeout");
        let mut reader = s.try_clone().expect("clone");
        reader
            .set_read_timeout(Some(std::time::Duration::from_secs(30)))
            .expect("timeout");
        let answered = Arc::new(AtomicBool::new(false));
        let flag = answered.clone();
        let read = std::thread::spawn(move || {
            let mut answer = Vec::new();
            let mut buf = [0u8; 4096];
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 {
                    break;
                }
                answer.extend_from_slice(&buf[..n]);
                flag.store(true, Ordering::SeqCst);
                if answer.windows(4).any(|w| w == b"\r\n\r\n") {
                    break;
                }
            }
            flag.store(true, Ordering::SeqCst);
            String::from_utf8_lossy(&answer).into_owned()
        });
        let request = format!(
            "POST /api/v1/tickets/{id}/attachments HTTP/1.1\r\nHost: {addr}\r\n\
             Authorization: Bearer {token}\r\n\
             Content-Type: multipart/form-data; boundary={boundary}\r\n\
             Content-Length: {}\r\n\r\n{head}",
            head.len() + JUNK + tail.len()
        );
        s.write_all(request.as_bytes()).expect("head");
        let chunk = vec![b'x'; 64 * 1024];
        let mut written = 0usize;
        while written < JUNK && !answered.load(Ordering::SeqCst) {
            match s.write(&chunk) {
                Ok(n) => written += n,
                Err(_) => break,
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        if written >= JUNK {
            let _ = s.write_all(&tail);
        }
        (written, read.join().expect("reader"))
    })
    .await
    .expect("writer");
    assert!(
        written < JUNK / 4,
        "the server read {written} bytes of a field it does not take"
    );
    assert!(answer.starts_with("HTTP/1.1 422"), "{answer}");
    assert_no_photos(&app, &w.resident, id).await;
}
