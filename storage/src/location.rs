//! Where the Parquet files and the manifest live: the data directory (the
//! default, as before object storage), or a bucket of an S3-compatible
//! store, Google Cloud Storage or Azure Blob Storage (`[storage] url`).
//!
//! Only the files and the manifest move; the write-ahead log stays on the
//! local disk (or volume) of each ingester, which is what makes an
//! acknowledged export durable before it reaches the bucket.
//!
//! Credentials and endpoints come from the environment, through
//! `object_store`'s own builders: for `s3://` the usual `AWS_ENDPOINT_URL`,
//! `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`,
//! `AWS_REGION` and `AWS_ALLOW_HTTP=true` (for a local server over plain
//! HTTP), and the instance or web-identity credentials of the AWS chain;
//! `GOOGLE_*` for `gs://`, `AZURE_*` for `az://`. Requests are path-style
//! unless `AWS_VIRTUAL_HOSTED_STYLE_REQUEST=true`, so local servers work
//! without DNS tricks. The manifest is replaced with conditional puts
//! (`If-Match` on its ETag), which S3 has offered since 2024; stores
//! without them cannot be shared by several writers.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use datafusion::object_store::ObjectStore;
use datafusion::object_store::local::LocalFileSystem;
use datafusion::object_store::path::Path as ObjectPath;
use datafusion::object_store::prefix::PrefixStore;
use object_store::aws::AmazonS3Builder;
use object_store::azure::MicrosoftAzureBuilder;
use object_store::gcp::GoogleCloudStorageBuilder;

use crate::StoreError;

/// A parsed `[storage] url`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StorageUrl {
    /// A local directory.
    Local(PathBuf),
    /// A bucket (or container) and a prefix in it.
    Bucket {
        /// `s3`, `gs` or `az`.
        scheme: Scheme,
        /// The bucket or container.
        bucket: String,
        /// The folder in it (no leading or trailing slash; may be empty).
        prefix: String,
    },
}

/// The object stores smolder can keep its files in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// Amazon S3 and S3-compatible servers.
    S3,
    /// Google Cloud Storage.
    Gcs,
    /// Azure Blob Storage.
    Azure,
}

impl StorageUrl {
    /// Whether the files are in a local directory (one process's).
    pub fn is_local(&self) -> bool {
        matches!(self, Self::Local(_))
    }

    /// Parses `url`; empty means `<data_dir>/parquet`.
    pub fn parse(url: &str, data_dir: &Path) -> Result<Self, String> {
        let url = url.trim();
        if url.is_empty() {
            return Ok(Self::Local(data_dir.join("parquet")));
        }
        let Some((scheme, rest)) = url.split_once("://") else {
            return Err(format!(
                "{url:?} is not a URL: use file:///path, s3://bucket/prefix, gs://bucket/prefix or az://container/prefix"
            ));
        };
        let scheme = match scheme.to_ascii_lowercase().as_str() {
            "file" => {
                let path = PathBuf::from(rest);
                if !path.is_absolute() {
                    return Err(format!(
                        "{url:?}: a file URL needs an absolute path (file:///var/lib/smolder)"
                    ));
                }
                return Ok(Self::Local(path));
            }
            "s3" | "s3a" => Scheme::S3,
            "gs" => Scheme::Gcs,
            "az" | "azure" | "abfs" | "abfss" => Scheme::Azure,
            other => {
                return Err(format!(
                    "{url:?}: {other}:// is not supported (file, s3, gs or az)"
                ));
            }
        };
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(format!("{url:?} names no bucket"));
        }
        Ok(Self::Bucket {
            scheme,
            bucket: bucket.to_string(),
            prefix: prefix.trim_matches('/').to_string(),
        })
    }

    /// The object store and, for a local directory, the directory (whose
    /// files are then `fsync`ed).
    pub fn open(&self) -> Result<(Arc<dyn ObjectStore>, Option<PathBuf>), StoreError> {
        match self {
            Self::Local(dir) => {
                std::fs::create_dir_all(dir).map_err(|source| StoreError::Io {
                    path: dir.clone(),
                    source,
                })?;
                let local = LocalFileSystem::new_with_prefix(dir)?.with_automatic_cleanup(true);
                Ok((Arc::new(local), Some(dir.clone())))
            }
            Self::Bucket {
                scheme,
                bucket,
                prefix,
            } => {
                let store: Arc<dyn ObjectStore> = match scheme {
                    Scheme::S3 => Arc::new(
                        AmazonS3Builder::from_env()
                            .with_bucket_name(bucket)
                            .build()?,
                    ),
                    Scheme::Gcs => Arc::new(
                        GoogleCloudStorageBuilder::from_env()
                            .with_bucket_name(bucket)
                            .build()?,
                    ),
                    Scheme::Azure => Arc::new(
                        MicrosoftAzureBuilder::from_env()
                            .with_container_name(bucket)
                            .build()?,
                    ),
                };
                if prefix.is_empty() {
                    Ok((store, None))
                } else {
                    Ok((
                        Arc::new(PrefixStore::new(store, ObjectPath::from(prefix.as_str()))),
                        None,
                    ))
                }
            }
        }
    }
}

impl std::fmt::Display for StorageUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Local(dir) => write!(f, "file://{}", dir.display()),
            Self::Bucket {
                scheme,
                bucket,
                prefix,
            } => {
                let scheme = match scheme {
                    Scheme::S3 => "s3",
                    Scheme::Gcs => "gs",
                    Scheme::Azure => "az",
                };
                write!(f, "{scheme}://{bucket}/{prefix}")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_urls_name_a_directory_or_a_bucket_and_prefix() {
        let data = Path::new("/var/lib/smolder");
        assert_eq!(
            StorageUrl::parse("", data).unwrap(),
            StorageUrl::Local(data.join("parquet"))
        );
        assert_eq!(
            StorageUrl::parse("file:///srv/telemetry", data).unwrap(),
            StorageUrl::Local("/srv/telemetry".into())
        );
        assert_eq!(
            StorageUrl::parse("s3://telemetry/prod/eu/", data).unwrap(),
            StorageUrl::Bucket {
                scheme: Scheme::S3,
                bucket: "telemetry".into(),
                prefix: "prod/eu".into()
            }
        );
        assert_eq!(
            StorageUrl::parse("gs://b", data).unwrap().to_string(),
            "gs://b/"
        );
        for (bad, says) in [
            ("telemetry", "not a URL"),
            ("file://relative/dir", "absolute path"),
            ("ftp://host/x", "ftp:// is not supported"),
            ("s3:///prefix", "names no bucket"),
        ] {
            let err = StorageUrl::parse(bad, data).unwrap_err();
            assert!(err.contains(says), "{bad}: {err}");
        }
    }
}
