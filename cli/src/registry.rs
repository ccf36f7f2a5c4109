//! Pushing images to an OCI registry with `oci-client`: blobs the registry lacks, then the
//! manifest exactly as built, so the registry's digest is the layout's.

use anyhow::Context;
use kiln_componentize::image::{Image, MANIFEST_MEDIA_TYPE};
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};

/// A registry on `host` (`HOST:PORT`); plain HTTP for loopback addresses, TLS elsewhere.
pub struct Registry {
    host: String,
    client: Client,
}

impl Registry {
    pub fn new(host: &str) -> Registry {
        let local = ["127.0.0.1", "localhost", "[::1]"].iter().any(|h| host == *h || host.starts_with(&format!("{h}:")));
        let protocol = if local { ClientProtocol::Http } else { ClientProtocol::Https };
        Registry { host: host.to_owned(), client: Client::new(ClientConfig { protocol, ..Default::default() }) }
    }

    /// `HOST/NAME:TAG`.
    pub fn reference(&self, name: &str, tag: &str) -> String {
        format!("{}/{name}:{tag}", self.host)
    }

    /// Whether the registry answers for `handle`'s images (a blob query gets an answer,
    /// found or not), before anything is built for it. The reason, when not, is said for
    /// people: the reference, or the innermost cause.
    pub async fn answers(&self, handle: &str) -> Result<(), String> {
        let name = format!("{handle}-data");
        // The handle is checked before (`check_handle`); what is left to refuse is the host.
        let text = self.reference(&name, "latest");
        let reference: Reference =
            text.parse().map_err(|error| format!("`{text}` is not a valid image reference ({error}): check the registry `{}`", self.host))?;
        self.client.store_auth_if_needed(reference.resolve_registry(), &RegistryAuth::Anonymous).await;
        let nothing = format!("sha256:{}", "0".repeat(64));
        self.client.blob_exists(&reference, &nothing).await.map_err(|error| {
            let mut cause: &dyn std::error::Error = &error;
            while let Some(inner) = cause.source() {
                cause = inner;
            }
            format!("the registry at {} does not answer ({cause})", self.host)
        })?;
        Ok(())
    }

    /// Pushes `image` as `NAME:TAG` for each tag; returns the bytes uploaded (blobs the
    /// registry already had are skipped).
    pub async fn push(&self, image: &Image, tags: &[&str]) -> anyhow::Result<u64> {
        let mut uploaded = 0;
        let first: Reference = self.reference(&image.name, tags[0]).parse().with_context(|| format!("image reference for {}", image.name))?;
        self.client.store_auth_if_needed(first.resolve_registry(), &RegistryAuth::Anonymous).await;
        for (digest, bytes, _) in image.blobs() {
            let exists = self.client.blob_exists(&first, &digest).await.with_context(|| format!("checking blob {digest} on {}", self.host))?;
            if !exists {
                self.client.push_blob(&first, bytes.to_vec(), &digest).await.with_context(|| format!("pushing blob {digest} to {}", self.host))?;
                uploaded += bytes.len() as u64;
            }
        }
        for tag in tags {
            let reference: Reference = self.reference(&image.name, tag).parse()?;
            let content_type = MANIFEST_MEDIA_TYPE.parse().expect("a valid header value");
            self.client
                .push_manifest_raw(&reference, image.manifest.clone(), content_type)
                .await
                .with_context(|| format!("pushing the manifest of {reference}"))?;
        }
        Ok(uploaded)
    }
}

/// The last layer (a component's binary) of the image `image` (`HOST/NAME@sha256:…`), after
/// checking that the registry's manifest is the one with `digest`.
pub async fn last_layer(image: &str, digest: &str) -> anyhow::Result<Vec<u8>> {
    let reference: Reference = image.parse().with_context(|| format!("image reference {image}"))?;
    let registry = Registry::new(reference.registry());
    let (manifest, found) =
        registry.client.pull_image_manifest(&reference, &RegistryAuth::Anonymous).await.with_context(|| format!("pulling the manifest of {image}"))?;
    anyhow::ensure!(found == digest, "{image}: the registry serves manifest {found}, the store registered {digest}");
    let layer = manifest.layers.last().with_context(|| format!("{image} has no layers"))?;
    let mut bytes = Vec::new();
    registry.client.pull_blob(&reference, layer, &mut bytes).await.with_context(|| format!("pulling the binary layer of {image}"))?;
    Ok(bytes)
}

/// The last layer of the image named `name` in the OCI layout at `dir`, checked against
/// `digest`.
pub fn layout_last_layer(dir: &std::path::Path, name: &str, digest: &str) -> anyhow::Result<Vec<u8>> {
    use kiln_componentize::image::{Layout, Manifest, REF_NAME};
    let layout = Layout { root: dir.to_path_buf() };
    let index = layout.index()?;
    let descriptor = index
        .manifests
        .iter()
        .find(|d| d.annotations.get(REF_NAME).map(String::as_str) == Some(name))
        .with_context(|| format!("{} has no image {name}", dir.display()))?;
    anyhow::ensure!(descriptor.digest == digest, "{}:{name} is {} now, the store registered {digest}", dir.display(), descriptor.digest);
    let manifest: Manifest = serde_json::from_slice(&layout.blob(&descriptor.digest)?)?;
    let layer = manifest.layers.last().with_context(|| format!("{}:{name} has no layers", dir.display()))?;
    Ok(layout.blob(&layer.digest)?)
}

/// The config (with its labels) of the image `image` (`HOST/NAME@sha256:…`), checked against
/// the registered manifest `digest`.
pub async fn config(image: &str, digest: &str) -> anyhow::Result<serde_json::Value> {
    let reference: Reference = image.parse().with_context(|| format!("image reference {image}"))?;
    let registry = Registry::new(reference.registry());
    let (_, found, config) =
        registry.client.pull_manifest_and_config(&reference, &RegistryAuth::Anonymous).await.with_context(|| format!("pulling the config of {image}"))?;
    anyhow::ensure!(found == digest, "{image}: the registry serves manifest {found}, the store registered {digest}");
    Ok(serde_json::from_str(&config)?)
}
