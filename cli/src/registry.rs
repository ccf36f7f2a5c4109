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
            self.client.push_manifest_raw(&reference, image.manifest.clone(), content_type).await.with_context(|| format!("pushing the manifest of {reference}"))?;
        }
        Ok(uploaded)
    }
}
