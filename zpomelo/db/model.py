"""Models: a collection name and typed fields with defaults; some fields indexed.

```python
class Player(Model):
    collection = "players"
    name = Field(str, default="")
    gold = Field(int, default=0)
    area_id = Field(str, default=None, index=True)
```
Instances are only made by a transaction (``Player.get(id)``, ``Player.create(id, ...)``,
``Player.find_by("area_id", a)``), which locks each document it hands out until it ends; field
writes go to the instance and reach the store only when the transaction commits.
"""
import copy
import json

from gevent import getcurrent

from zpomelo.db.errors import ValidationError

SCALARS = (str, int, float, bool)
ALLOWED_TYPES = SCALARS + (list, dict, bytes)
SEP = "\x1f"  # collection / id separator in store keys: not typed by anyone by accident


class Field:
    """A typed field; ``default`` may be a value (deep-copied) or a callable; None is always allowed."""

    def __init__(self, type=str, default=None, index=False):
        if type not in ALLOWED_TYPES:
            raise ValidationError("field type must be one of %s, not %r" % (
                ", ".join(t.__name__ for t in ALLOWED_TYPES), type))
        if index and type not in SCALARS:
            raise ValidationError("only str, int, float and bool fields can be indexed")
        self.type = type
        self.default = default
        self.index = index
        self.name = None

    def __set_name__(self, owner, name):
        self.name = name

    def make_default(self):
        return self.default() if callable(self.default) else copy.deepcopy(self.default)

    def check(self, value):
        if value is None:
            return value
        if self.type is float and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        if self.type is int and isinstance(value, bool) or not isinstance(value, self.type):
            raise ValidationError("field %s takes %s, got %s %r" % (
                self.name, self.type.__name__, type(value).__name__, value))
        return value

    def __get__(self, instance, owner):
        if instance is None:
            return self
        return instance._data[self.name]

    def __set__(self, instance, value):
        if type(value) is not self.type:    # the usual case needs no check() call
            value = self.check(value)
        instance._data[self.name] = value


class ModelMeta(type):
    def __new__(mcs, name, bases, namespace):
        cls = super().__new__(mcs, name, bases, namespace)
        fields = {}
        for base in reversed(cls.__mro__[1:]):
            fields.update(getattr(base, "_fields", {}))
        fields.update({k: v for k, v in namespace.items() if isinstance(v, Field)})
        cls._fields = fields
        cls._field_names = frozenset(fields)
        cls._indexes = tuple(k for k, f in fields.items() if f.index)
        if namespace.get("collection") is None and fields:
            raise ValidationError("model %s needs a collection name (collection = \"...\")" % name)
        if cls.collection is not None and SEP in cls.collection:
            raise ValidationError("collection name %r has a control character" % cls.collection)
        return cls


class Model(metaclass=ModelMeta):
    """Base class of game models; see the module docstring."""
    collection = None
    __slots__ = ("id", "_data", "_tx")

    def __init__(self, id, data, tx):
        self.id = id
        self._data = data
        self._tx = tx

    # -- building documents ------------------------------------------------------------
    @classmethod
    def key_of(cls, id):
        return document_key(cls.collection, id)

    @classmethod
    def new_data(cls, fields):
        unknown = set(fields) - set(cls._fields)
        if unknown:
            raise ValidationError("%s has no field %s (fields: %s)" % (
                cls.__name__, ", ".join(sorted(unknown)), ", ".join(cls._fields)))
        data = {}
        for name, field in cls._fields.items():
            data[name] = field.check(fields[name]) if name in fields else field.make_default()
        return data

    @classmethod
    def from_stored(cls, data):
        """A dict stored before the model gained or lost fields -> field dict: fields added since
        get their default, fields removed are dropped. (A transaction uses a dict stored by this
        model as it is and calls this only for one of another shape.)"""
        out = {}
        for name, field in cls._fields.items():
            out[name] = data[name] if name in data else field.make_default()
        return out

    # -- the transaction API (the current greenlet's transaction) ------------------------
    @classmethod
    def get(cls, id):
        """The document with this id, locked until the transaction ends; None if absent."""
        return (_transaction.running.get(getcurrent()) or _transaction.current_or_fail()).get(cls, id)

    @classmethod
    def create(cls, id, **fields):
        return _transaction.current_or_fail().create(cls, id, fields)

    @classmethod
    def get_or_create(cls, id, **fields):
        tx = _transaction.running.get(getcurrent()) or _transaction.current_or_fail()
        return tx.get(cls, id) or tx.create(cls, id, fields)

    @classmethod
    def find_by(cls, field, value):
        """Documents whose indexed ``field`` equals ``value``, each locked (sorted by id)."""
        return _transaction.current_or_fail().find_by(cls, field, value)

    def delete(self):
        self._tx.delete(self)

    def to_dict(self):
        return dict(self._data, id=self.id)

    def __repr__(self):
        return "<%s %s %r>" % (type(self).__name__, self.id, self._data)


def document_key(collection, id):
    if type(id) is str and SEP not in id:   # the usual cases first, without the checks below
        return collection + SEP + id
    if type(id) is int:
        return collection + SEP + str(id)
    if not isinstance(id, (str, int)) or isinstance(id, bool):
        raise ValidationError("document ids are str or int, got %s %r" % (type(id).__name__, id))
    if isinstance(id, str) and SEP in id:
        raise ValidationError("document id %r has the \\x1f control character" % id)
    return "%s%s%s" % (collection, SEP, id)


def index_key(collection, field, value):
    """One stored document per indexed value: the sorted ids of the documents holding it."""
    return "%s%s$%s%s%s" % (collection, SEP, field, SEP, json.dumps(value))


def load_models(base_dir):
    """The Model subclasses defined in ``app/models/*.py`` of a project, by class name."""
    import inspect
    import os

    from zpomelo.loader import _import_file, _module_files
    directory = os.path.join(base_dir, "app", "models")
    models = {}
    for filename in _module_files(directory):
        module = _import_file(os.path.join(directory, filename), "zpomelo_app_models_%s" % filename[:-3])
        for name, value in vars(module).items():
            if inspect.isclass(value) and issubclass(value, Model) and value.collection \
                    and value.__module__ == module.__name__:
                models[name] = value
    return models


# at the end: transaction imports this module (index_key); the models reach it on every call,
# where an import statement in each method cost about a microsecond
from zpomelo.db import transaction as _transaction  # noqa: E402
