//! Typed values attached to one request: what a middleware learns (a
//! request id, a JWT's claims) and a handler reads, one value per type, as
//! in Go's `context.WithValue` or the `http` crate's extensions. They
//! travel in the request's head, as the `http` crate keeps them in a
//! request's `Parts`.

use std::any::{Any, TypeId};
use std::fmt;

/// Typed per-request values, one per type. Nothing is allocated until the
/// first [`Extensions::insert`], so a request that carries none costs one
/// pointer. Values must be `Clone` (a request is) but need not be `Send`:
/// a request never leaves its shard.
#[derive(Default)]
pub struct Extensions {
    /// Boxed: a request without extensions carries one null pointer.
    map: Option<Box<Map>>,
}

/// Few values per request: a scan beats hashing.
type Map = Vec<(TypeId, Box<dyn AnyClone>)>;

impl Extensions {
    /// No values.
    pub const fn new() -> Extensions {
        Extensions { map: None }
    }

    /// Stores `value`, returning the value of the same type it replaces.
    pub fn insert<T: Clone + 'static>(&mut self, value: T) -> Option<T> {
        let map = self.map.get_or_insert_with(Default::default);
        let id = TypeId::of::<T>();
        let boxed: Box<dyn AnyClone> = Box::new(value);
        match map.iter_mut().find(|(t, _)| *t == id) {
            Some((_, slot)) => downcast(std::mem::replace(slot, boxed)),
            None => {
                map.push((id, boxed));
                None
            }
        }
    }

    /// The value of type `T`, if one was stored.
    pub fn get<T: 'static>(&self) -> Option<&T> {
        let id = TypeId::of::<T>();
        self.map
            .as_ref()?
            .iter()
            .find(|(t, _)| *t == id)
            .and_then(|(_, v)| (**v).as_any().downcast_ref())
    }

    /// The value of type `T`, mutably.
    pub fn get_mut<T: 'static>(&mut self) -> Option<&mut T> {
        let id = TypeId::of::<T>();
        self.map
            .as_mut()?
            .iter_mut()
            .find(|(t, _)| *t == id)
            .and_then(|(_, v)| (**v).as_any_mut().downcast_mut())
    }

    /// Takes the value of type `T` out.
    pub fn remove<T: 'static>(&mut self) -> Option<T> {
        let id = TypeId::of::<T>();
        let map = self.map.as_mut()?;
        let i = map.iter().position(|(t, _)| *t == id)?;
        downcast(map.swap_remove(i).1)
    }

    /// How many values are stored.
    pub fn len(&self) -> usize {
        self.map.as_ref().map_or(0, |m| m.len())
    }

    /// Whether no value is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Inline, the check that there is nothing to drop; the values are dropped
/// out of line. Every request's head carries extensions: with the whole
/// drop inlined (a loop over boxed values) the head's drop grew enough that
/// LLVM stopped eliding the moves of a request on its way to the handler,
/// 5 more `memcpy` calls per request under callgrind.
impl Drop for Extensions {
    #[inline]
    fn drop(&mut self) {
        if let Some(map) = self.map.take() {
            drop_map(map);
        }
    }
}

#[cold]
#[inline(never)]
fn drop_map(map: Box<Map>) {
    drop(map);
}

fn downcast<T: 'static>(boxed: Box<dyn AnyClone>) -> Option<T> {
    boxed.into_any().downcast().ok().map(|b| *b)
}

impl Clone for Extensions {
    fn clone(&self) -> Extensions {
        Extensions {
            map: self
                .map
                .as_ref()
                .map(|m| Box::new(m.iter().map(|(t, v)| (*t, (**v).clone_box())).collect())),
        }
    }
}

impl fmt::Debug for Extensions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Extensions")
            .field("len", &self.len())
            .finish()
    }
}

/// `Any` that can clone itself behind a box.
trait AnyClone: Any {
    fn clone_box(&self) -> Box<dyn AnyClone>;
    fn as_any(&self) -> &dyn Any;
    fn as_any_mut(&mut self) -> &mut dyn Any;
    fn into_any(self: Box<Self>) -> Box<dyn Any>;
}

impl<T: Clone + 'static> AnyClone for T {
    fn clone_box(&self) -> Box<dyn AnyClone> {
        Box::new(self.clone())
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
    fn into_any(self: Box<Self>) -> Box<dyn Any> {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, PartialEq)]
    struct RequestId(String);

    #[test]
    fn one_value_per_type_inserted_read_replaced_and_removed() {
        let mut e = Extensions::new();
        assert!(e.is_empty() && e.map.is_none(), "nothing allocated yet");
        assert_eq!(e.get::<u32>(), None);
        assert_eq!(e.insert(7u32), None);
        assert_eq!(e.insert(RequestId("a".into())), None);
        assert_eq!(e.get::<u32>(), Some(&7));
        assert_eq!(e.insert(8u32), Some(7), "the old value comes back");
        *e.get_mut::<u32>().expect("stored") += 1;
        assert_eq!(e.get::<u32>(), Some(&9));
        assert_eq!(e.len(), 2);
        let copy = e.clone();
        assert_eq!(e.remove::<RequestId>(), Some(RequestId("a".into())));
        assert_eq!(e.remove::<RequestId>(), None);
        assert_eq!(e.get::<u64>(), None, "types are told apart exactly");
        assert_eq!(copy.get::<RequestId>(), Some(&RequestId("a".into())));
    }
}
