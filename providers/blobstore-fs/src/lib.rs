//! # weft-blobstore-fs — `wasmcloud:blobstore` on the filesystem
//!
//! Each link names a `root` directory (created if missing); the actor's containers are the
//! directories directly under it and its objects the files directly in those. A container or
//! object name is one path component: no `/` or `\`, not `.` or `..`, no NUL, at most 255
//! bytes — so no name reaches outside the root, and a symbolic link under it is neither
//! followed nor listed. Objects travel whole, in one chunk each way.
//!
//! | link value | meaning | default |
//! |---|---|---|
//! | `root` | the directory this link's containers live in | required |
//! | `max_object_bytes` | the largest object put or read | 16777216 |
//! | `max_list` | the most objects or containers one list answers | 1000 |
//!
//! **What it is not:** chunked transfers (`PutChunk`, `ChunkReceiver`), object metadata beyond
//! size, or a store shared safely by two processes writing one object (last rename wins).

use std::path::{Path, PathBuf};
use weft_contracts::blobstore::*;
use weft_provider_sdk::{LinkDefinition, Provider, ProviderCall, ProviderError, async_trait};

/// The default of `max_object_bytes`.
pub const DEFAULT_MAX_OBJECT_BYTES: u64 = 16 * 1024 * 1024;
/// The default of `max_list`.
pub const DEFAULT_MAX_LIST: usize = 1000;
/// The longest container or object name.
pub const MAX_NAME_BYTES: usize = 255;

/// The `wasmcloud:blobstore` provider on the filesystem.
#[derive(Debug, Default)]
pub struct FsBlobstore;

impl FsBlobstore {
    /// A store; where each actor's objects live is in its link.
    pub fn new() -> Self {
        FsBlobstore
    }
}

/// What one link says.
#[derive(Debug, Clone)]
struct Settings {
    root: PathBuf,
    max_object_bytes: u64,
    max_list: usize,
}

impl Settings {
    fn of(link: &LinkDefinition) -> Result<Settings, ProviderError> {
        let bad = |reason: String| ProviderError::Link {
            actor_id: link.actor_id.clone(),
            reason,
        };
        let root = link
            .values
            .get("root")
            .map(|r| r.trim())
            .filter(|r| !r.is_empty())
            .ok_or_else(|| {
                bad(
                    "the link has no value root: give the directory the actor's containers live in"
                        .into(),
                )
            })?;
        let number = |key: &str, default: u64| match link.values.get(key) {
            None => Ok(default),
            Some(v) => v
                .trim()
                .parse::<u64>()
                .map_err(|_| bad(format!("link value {key}={v:?} is not a whole number"))),
        };
        Ok(Settings {
            root: PathBuf::from(root),
            max_object_bytes: number("max_object_bytes", DEFAULT_MAX_OBJECT_BYTES)?,
            max_list: usize::try_from(number("max_list", DEFAULT_MAX_LIST as u64)?)
                .unwrap_or(usize::MAX),
        })
    }
}

/// `name` as one path component, or why not.
fn component<'a>(what: &str, name: &'a str) -> Result<&'a str, ProviderError> {
    let refuse = |why: &str| ProviderError::BadRequest {
        operation: "wasmcloud:blobstore".into(),
        reason: format!(
            "{what} name {name:?} {why}; use one path component, 1 to {MAX_NAME_BYTES} bytes, without / or \\ and other than . and .."
        ),
    };
    if name.is_empty() || name.len() > MAX_NAME_BYTES {
        return Err(refuse("is empty or too long"));
    }
    if name == "." || name == ".." {
        return Err(refuse("would leave its directory"));
    }
    if name.contains(['/', '\\', '\0']) {
        return Err(refuse("holds a path separator or NUL"));
    }
    Ok(name)
}

fn io(what: String) -> impl FnOnce(std::io::Error) -> ProviderError {
    move |e| ProviderError::Backend(format!("{what}: {e}"))
}

fn bad_request(operation: &str, reason: String) -> ProviderError {
    ProviderError::BadRequest {
        operation: operation.to_string(),
        reason,
    }
}

/// Whether `path` is a real directory (a symbolic link is not followed).
async fn is_dir(path: &Path) -> bool {
    tokio::fs::symlink_metadata(path)
        .await
        .is_ok_and(|m| m.is_dir())
}

/// The length of `path` if it is a regular file (a symbolic link is not followed).
async fn file_len(path: &Path) -> Option<u64> {
    tokio::fs::symlink_metadata(path)
        .await
        .ok()
        .filter(|m| m.is_file())
        .map(|m| m.len())
}

impl Settings {
    fn container(&self, name: &str) -> Result<PathBuf, ProviderError> {
        Ok(self.root.join(component("container", name)?))
    }

    fn object(&self, container: &str, object: &str) -> Result<PathBuf, ProviderError> {
        Ok(self
            .container(container)?
            .join(component("object", object)?))
    }

    /// The names of the entries under `dir` that `keep` accepts, sorted, at most `max_list`;
    /// and whether that was all of them.
    async fn names(
        &self,
        dir: &Path,
        keep: fn(&std::fs::Metadata) -> bool,
    ) -> Result<(Vec<(String, u64)>, bool), ProviderError> {
        let mut entries = tokio::fs::read_dir(dir)
            .await
            .map_err(io(format!("could not list {}", dir.display())))?;
        let mut names = Vec::new();
        let mut all = true;
        while let Some(entry) = entries
            .next_entry()
            .await
            .map_err(io(format!("could not list {}", dir.display())))?
        {
            let Ok(meta) = entry.metadata().await else {
                continue;
            };
            let Some(name) = entry.file_name().to_str().map(str::to_string) else {
                continue;
            };
            if keep(&meta) && !name.starts_with(".weft-") {
                if names.len() == self.max_list {
                    all = false;
                    break;
                }
                names.push((name, meta.len()));
            }
        }
        names.sort();
        Ok((names, all))
    }
}

#[async_trait]
impl Provider for FsBlobstore {
    fn contract_id(&self) -> &str {
        CONTRACT_ID
    }

    /// Checks the link's values and makes its root directory.
    async fn put_link(&self, link: &LinkDefinition) -> Result<(), ProviderError> {
        let settings = Settings::of(link)?;
        tokio::fs::create_dir_all(&settings.root)
            .await
            .map_err(io(format!(
                "could not make the link's root {}",
                settings.root.display()
            )))
    }

    async fn handle_call(&self, call: ProviderCall) -> Result<Vec<u8>, ProviderError> {
        let settings = Settings::of(&call.link)?;
        let op = call.operation.as_str();
        match op {
            CONTAINER_EXISTS => {
                let name: String = request(op, &call.payload)?;
                answer(&is_dir(&settings.container(&name)?).await)
            }
            CREATE_CONTAINER => {
                let name: String = request(op, &call.payload)?;
                let dir = settings.container(&name)?;
                tokio::fs::create_dir_all(&dir)
                    .await
                    .map_err(io(format!("could not make container {name}")))?;
                answer(&())
            }
            GET_CONTAINER_INFO => {
                let name: String = request(op, &call.payload)?;
                if !is_dir(&settings.container(&name)?).await {
                    return Err(bad_request(
                        op,
                        format!("there is no container {name}; create it first"),
                    ));
                }
                answer(&ContainerMetadata { container_id: name })
            }
            LIST_CONTAINERS => {
                let (names, _) = settings.names(&settings.root, |m| m.is_dir()).await?;
                let containers: Vec<ContainerMetadata> = names
                    .into_iter()
                    .map(|(container_id, _)| ContainerMetadata { container_id })
                    .collect();
                answer(&containers)
            }
            REMOVE_CONTAINERS => {
                let names: Vec<String> = request(op, &call.payload)?;
                let mut failed = Vec::new();
                for name in names {
                    let outcome = match settings.container(&name) {
                        Err(e) => Err(e.to_string()),
                        Ok(dir) if !is_dir(&dir).await => {
                            Err(format!("there is no container {name}"))
                        }
                        Ok(dir) => tokio::fs::remove_dir_all(&dir)
                            .await
                            .map_err(|e| e.to_string()),
                    };
                    if let Err(error) = outcome {
                        failed.push(ItemResult {
                            key: name,
                            success: false,
                            error: Some(error),
                        });
                    }
                }
                answer(&failed)
            }
            OBJECT_EXISTS => {
                let object: ContainerObject = request(op, &call.payload)?;
                let path = settings.object(&object.container_id, &object.object_id)?;
                answer(&file_len(&path).await.is_some())
            }
            LIST_OBJECTS => {
                let request: ListObjectsRequest = request(op, &call.payload)?;
                let dir = settings.container(&request.container_id)?;
                if !is_dir(&dir).await {
                    return Err(bad_request(
                        op,
                        format!(
                            "there is no container {}; create it first",
                            request.container_id
                        ),
                    ));
                }
                let mut limited = settings.clone();
                if let Some(max) = request.max_items {
                    limited.max_list = limited
                        .max_list
                        .min(usize::try_from(max).unwrap_or(usize::MAX));
                }
                let (names, all) = limited.names(&dir, |m| m.is_file()).await?;
                answer(&ListObjectsResponse {
                    objects: names
                        .into_iter()
                        .map(|(object_id, size)| ObjectMetadata {
                            container_id: request.container_id.clone(),
                            object_id,
                            size,
                        })
                        .collect(),
                    is_last: all,
                })
            }
            REMOVE_OBJECTS => {
                let request: RemoveObjectsRequest = request(op, &call.payload)?;
                let mut failed = Vec::new();
                for object in request.objects {
                    let outcome = match settings.object(&request.container_id, &object) {
                        Err(e) => Err(e.to_string()),
                        Ok(path) if file_len(&path).await.is_none() => {
                            Err(format!("there is no object {object}"))
                        }
                        Ok(path) => tokio::fs::remove_file(&path)
                            .await
                            .map_err(|e| e.to_string()),
                    };
                    if let Err(error) = outcome {
                        failed.push(ItemResult {
                            key: object,
                            success: false,
                            error: Some(error),
                        });
                    }
                }
                answer(&failed)
            }
            PUT_OBJECT => {
                let request: PutObjectRequest = request(op, &call.payload)?;
                let chunk = request.chunk;
                if !chunk.is_last || chunk.offset != 0 {
                    return Err(bad_request(op, "chunked uploads are not served: send the whole object in one chunk, offset 0, isLast true".into()));
                }
                let len = chunk.bytes.len() as u64;
                if len > settings.max_object_bytes {
                    return Err(bad_request(
                        op,
                        format!(
                            "the object is {len} bytes, over the link's max_object_bytes ({}); raise it on the link",
                            settings.max_object_bytes
                        ),
                    ));
                }
                let dir = settings.container(&chunk.container_id)?;
                if !is_dir(&dir).await {
                    return Err(bad_request(
                        op,
                        format!(
                            "there is no container {}; create it first",
                            chunk.container_id
                        ),
                    ));
                }
                let path = settings.object(&chunk.container_id, &chunk.object_id)?;
                // Written beside it, then renamed over it: a reader sees the old or the new
                // object whole, never a part.
                let partial = dir.join(format!(".weft-{}", chunk.object_id));
                tokio::fs::write(&partial, &chunk.bytes)
                    .await
                    .map_err(io(format!("could not write object {}", chunk.object_id)))?;
                tokio::fs::rename(&partial, &path)
                    .await
                    .map_err(io(format!("could not write object {}", chunk.object_id)))?;
                answer(&PutObjectResponse::default())
            }
            GET_OBJECT => {
                let request: GetObjectRequest = request(op, &call.payload)?;
                let path = settings.object(&request.container_id, &request.object_id)?;
                let Some(len) = file_len(&path).await else {
                    return answer(&GetObjectResponse {
                        success: false,
                        error: Some(format!(
                            "there is no object {} in container {}",
                            request.object_id, request.container_id
                        )),
                        ..GetObjectResponse::default()
                    });
                };
                let start = request.range_start.unwrap_or(0).min(len);
                let end = request
                    .range_end
                    .map_or(len, |e| e.saturating_add(1).min(len))
                    .max(start);
                if end - start > settings.max_object_bytes {
                    return Err(bad_request(
                        op,
                        format!(
                            "the object is {len} bytes, over the link's max_object_bytes ({}); ask for a range, or raise it on the link",
                            settings.max_object_bytes
                        ),
                    ));
                }
                let bytes = read_range(path, start, end - start)
                    .await
                    .map_err(io(format!("could not read object {}", request.object_id)))?;
                answer(&GetObjectResponse {
                    success: true,
                    error: None,
                    content_length: len,
                    initial_chunk: Some(Chunk {
                        object_id: request.object_id,
                        container_id: request.container_id,
                        bytes,
                        offset: start,
                        is_last: true,
                    }),
                })
            }
            _ => Err(ProviderError::unknown_operation(CONTRACT_ID, op)),
        }
    }
}

/// `len` bytes of the file at `path` from `start`: only the range asked for is read into
/// memory, never the whole object.
async fn read_range(path: PathBuf, start: u64, len: u64) -> std::io::Result<Vec<u8>> {
    tokio::task::spawn_blocking(move || {
        use std::io::{Read, Seek, SeekFrom};
        let mut file = std::fs::File::open(path)?;
        file.seek(SeekFrom::Start(start))?;
        let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
        file.take(len).read_to_end(&mut bytes)?;
        Ok(bytes)
    })
    .await
    .map_err(std::io::Error::other)?
}

/// The request of `operation`, decoded.
fn request<T: serde::de::DeserializeOwned>(
    operation: &str,
    payload: &[u8],
) -> Result<T, ProviderError> {
    weft_contracts::decode(payload).map_err(|e| bad_request(operation, e.to_string()))
}

/// An answer, encoded.
fn answer<T: serde::Serialize>(value: &T) -> Result<Vec<u8>, ProviderError> {
    weft_contracts::encode(value).map_err(|e| ProviderError::Backend(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_would_leave_their_directory_are_refused() {
        for name in ["", "..", ".", "a/b", "../x", "a\\b", "x\0y"] {
            let err = component("object", name).unwrap_err().to_string();
            assert!(err.contains("use one path component"), "{name:?}: {err}");
        }
        assert_eq!(component("object", "photo.jpg").unwrap(), "photo.jpg");
        assert!(component("object", &"a".repeat(256)).is_err());
    }
}
