"""One vCenter session shared by every call of a cloud object.

``VSphereClient`` logs in lazily (the first call that needs vCenter), keeps
the session alive with a heartbeat thread until ``close()`` (``close_all``
closes every client of the process that still has one), and logs in again
when vCenter answers ``NotAuthenticated`` (pyvmomi's
``VimSessionOrientedStub`` retries the call after a fresh login). One SOAP stub is shared between threads: it
pools its HTTP connections, and a login is serialised by the stub's lock.

Certificates are always checked unless the configuration says
``insecure: true``: we pass our own ``SSLContext`` built from the configured
CA, because pyvmomi's ``SmartConnect`` silently disables verification for
127.0.0.1 when it gets none. Plain HTTP transfers (NFC uploads, datastore
files) use a ``requests.Session`` with ``trust_env = False``, so that
``REQUESTS_CA_BUNDLE`` in the environment cannot replace our CA.

Connecting fails fast with a ``CloudError`` naming the vCenter address:
the version probe uses ``connect_timeout`` (default 5 s). When nothing
usable answered (no route, refused, timed out, an HTTP 5xx) it is a
``VCenterUnreachable``: a caller may wait and try again, while a refused
login or an untrusted certificate is an answer to act on.
"""

from __future__ import annotations

import http.client
import logging
import os
import ssl
import tempfile
import threading
import weakref
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from xml.etree import ElementTree

import requests
from pyVim.connect import VimSessionOrientedStub
from pyVmomi import SoapStubAdapter, VmomiSupport, vim, vmodl

from cpi.base import CloudError
from cpi.vsphere.config import VCenterConfig

log = logging.getLogger(__name__)

KEEPALIVE_SECONDS = 60.0

#: The clients of this process whose keep-alive runs (``close_all`` closes them).
_kept_alive: weakref.WeakSet[VSphereClient] = weakref.WeakSet()


class VCenterUnreachable(CloudError):
    """No usable answer from vCenter (network, timeout, 5xx); BOSH type ``CloudError``."""


def _login_method(user: str, password: str):
    """Log in unconditionally (pyvmomi's version first reads ``currentSession``,
    which some endpoints refuse before login)."""

    def login(soap_stub) -> None:
        si = vim.ServiceInstance("ServiceInstance", soap_stub)
        si.RetrieveContent().sessionManager.Login(user, password, None)

    return login


class VSphereClient:
    """Lazily connected, thread-safe access to one vCenter."""

    def __init__(self, config: VCenterConfig, *, keepalive_seconds: float = KEEPALIVE_SECONDS):
        self.config = config
        self._keepalive_seconds = keepalive_seconds
        self._lock = threading.Lock()
        self._si: vim.ServiceInstance | None = None
        self._stub: VimSessionOrientedStub | None = None
        self._content: vim.ServiceInstanceContent | None = None
        self._stop = threading.Event()
        self._keepalive: threading.Thread | None = None
        self._ca_file: str | None = None
        self._http_local = threading.local()

    # -- connection -----------------------------------------------------------

    def ssl_context(self) -> ssl.SSLContext:
        if self.config.insecure:
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            return ctx
        if self.config.ca_cert:
            try:
                return ssl.create_default_context(cadata=self.config.ca_cert)
            except ssl.SSLError as exc:
                raise CloudError(
                    f"vCenter {self.config.address}: the CA certificate is not usable: {exc}"
                ) from None
        return ssl.create_default_context()

    @property
    def content(self) -> vim.ServiceInstanceContent:
        if self._content is None:
            self.connect()
        assert self._content is not None
        return self._content

    @property
    def si(self) -> vim.ServiceInstance:
        if self._si is None:
            self.connect()
        assert self._si is not None
        return self._si

    def connect(self) -> None:
        with self._lock:
            if self._content is not None:
                return
            cfg = self.config
            ctx = self.ssl_context()
            version = self._probe_version(ctx)
            soap = SoapStubAdapter(
                host=cfg.host,
                port=cfg.port,
                version=version,
                path="/sdk",
                sslContext=ctx,
                httpConnectionTimeout=cfg.http_timeout,
            )
            stub = VimSessionOrientedStub(soap, _login_method(cfg.user, cfg.password), retryCount=2)
            si = vim.ServiceInstance("ServiceInstance", stub)
            try:
                # The session stub logs in before its first call: a bad password fails here.
                content = si.RetrieveContent()
            except vim.fault.InvalidLogin:
                raise CloudError(
                    f"Cannot log in to vCenter {cfg.address} as '{cfg.user}': incorrect user name or password"
                ) from None
            except vmodl.MethodFault as exc:
                raise CloudError(f"Cannot log in to vCenter {cfg.address}: {exc.msg}") from None
            except (OSError, http.client.HTTPException) as exc:
                raise VCenterUnreachable(
                    f"Cannot connect to vCenter {cfg.address}: {exc}"
                ) from None
            self._stub, self._si, self._content = stub, si, content
            if self._keepalive_seconds > 0:
                self._keepalive = threading.Thread(
                    target=self._heartbeat, name=f"vcenter-keepalive-{cfg.address}", daemon=True
                )
                self._keepalive.start()
                _kept_alive.add(self)

    def _probe_version(self, ctx: ssl.SSLContext) -> str:
        """The newest vim25 API version both pyvmomi and the server speak (with a short timeout)."""
        cfg = self.config
        conn = http.client.HTTPSConnection(
            cfg.host, cfg.port, context=ctx, timeout=cfg.connect_timeout
        )
        try:
            conn.request("GET", "/sdk/vimServiceVersions.xml")
            response = conn.getresponse()
            body = response.read()
        except ssl.SSLCertVerificationError as exc:
            raise CloudError(
                f"Cannot connect to vCenter {cfg.address}: its certificate is not trusted "
                f"({exc.verify_message}); set connection_options.ca_cert to the vCenter CA"
            ) from None
        except TimeoutError:
            raise VCenterUnreachable(
                f"Cannot connect to vCenter {cfg.address}: no answer within {cfg.connect_timeout:g} s"
            ) from None
        except (OSError, http.client.HTTPException) as exc:
            raise VCenterUnreachable(f"Cannot connect to vCenter {cfg.address}: {exc}") from None
        finally:
            conn.close()
        if response.status >= 500:
            raise VCenterUnreachable(
                f"Cannot connect to vCenter {cfg.address}: it answered HTTP {response.status}"
            )
        if response.status != 200:
            raise CloudError(
                f"Cannot connect to vCenter {cfg.address}: /sdk/vimServiceVersions.xml answered "
                f"HTTP {response.status}; is this a vCenter?"
            )
        try:
            root = ElementTree.fromstring(body)
        except ElementTree.ParseError:
            raise CloudError(
                f"Cannot connect to vCenter {cfg.address}: not a vSphere API endpoint"
            ) from None
        offered: set[str] = set()
        for ns in root.findall("namespace"):
            if ns.findtext("name") not in (None, "urn:vim25"):
                continue
            offered.add(ns.findtext("version") or "")
            offered.update(v.text or "" for v in ns.findall("priorVersions/version"))
        for version in VmomiSupport.GetServiceVersions("vim25"):
            if VmomiSupport.versionIdMap.get(version) in offered:
                return version
        raise CloudError(
            f"vCenter {cfg.address} offers no vSphere API version this client knows ({sorted(offered)})"
        )

    def _heartbeat(self) -> None:
        """Touch the session every minute; log in again if vCenter forgot it."""
        while not self._stop.wait(self._keepalive_seconds):
            try:
                if (
                    self._content is not None
                    and self._content.sessionManager.currentSession is None
                ):
                    log.info("vCenter %s session expired; logging in again", self.config.address)
                    assert self._stub is not None
                    self._stub._SetStateUnauthenticated()
                    self._stub._CallLoginMethod()
            except Exception as exc:  # noqa: BLE001 - a heartbeat must never die
                if not self._stop.is_set():  # closed meanwhile: its vCenter may be gone too
                    log.warning("vCenter %s keep-alive failed: %s", self.config.address, exc)

    def close(self) -> None:
        """Stop the heartbeat and log out (best effort)."""
        self._stop.set()
        _kept_alive.discard(self)
        with self._lock:
            content, self._content, self._si = self._content, None, None
        if content is not None:
            try:
                content.sessionManager.Logout()
            except Exception:  # noqa: BLE001 - logging out is a courtesy
                pass
        if self._ca_file:
            try:
                os.unlink(self._ca_file)
            except OSError:
                pass
            self._ca_file = None

    # -- plain HTTP (NFC, datastore files) ---------------------------------------

    def session_cookie(self) -> str:
        """The ``vmware_soap_session`` cookie of the current login, for HTTP transfers."""
        self.content  # noqa: B018 - make sure we are logged in
        assert self._stub is not None
        return self._stub.soapStub.cookie

    def http(self) -> requests.Session:
        """A per-thread requests session that trusts only our CA (or nothing, if insecure)."""
        session = getattr(self._http_local, "session", None)
        if session is None:
            session = requests.Session()
            session.trust_env = False
            session.verify = self._requests_verify()
            self._http_local.session = session
        return session

    def _requests_verify(self) -> bool | str:
        if self.config.insecure:
            return False
        if not self.config.ca_cert:
            return True
        with self._lock:
            if self._ca_file is None:
                fd, path = tempfile.mkstemp(prefix="vcenter-ca-", suffix=".pem")
                with os.fdopen(fd, "w") as f:
                    f.write(self.config.ca_cert)
                self._ca_file = path
            return self._ca_file

    def url_for(self, url: str) -> str:
        """NFC device URLs say ``https://*/...``: put our vCenter address in."""
        host = f"[{self.config.host}]" if ":" in self.config.host else self.config.host
        return url.replace("://*/", f"://{host}:{self.config.port}/", 1)

    # -- inventory helpers -------------------------------------------------------

    def retrieve(
        self,
        container: vim.ManagedEntity,
        obj_type: type,
        properties: Sequence[str],
        *,
        recursive: bool = True,
    ) -> list[tuple[Any, dict[str, Any]]]:
        """``[(object, {property: value})]`` for every ``obj_type`` under ``container``, in one round trip."""
        content = self.content
        view = content.viewManager.CreateContainerView(container, [obj_type], recursive)
        try:
            return self.retrieve_objects_from_view(view, obj_type, properties)
        finally:
            view.DestroyView()

    def retrieve_objects_from_view(
        self, view, obj_type, properties
    ) -> list[tuple[Any, dict[str, Any]]]:
        spec = vmodl.query.PropertyCollector.FilterSpec(
            objectSet=[
                vmodl.query.PropertyCollector.ObjectSpec(
                    obj=view,
                    skip=True,
                    selectSet=[
                        vmodl.query.PropertyCollector.TraversalSpec(
                            name="view", path="view", skip=False, type=vim.view.ContainerView
                        )
                    ],
                )
            ],
            propSet=[
                vmodl.query.PropertyCollector.PropertySpec(type=obj_type, pathSet=list(properties))
            ],
        )
        return self._collect(spec)

    def properties_of(self, objects: Iterable[Any], obj_type: type, properties: Sequence[str]):
        """Properties of known objects, one round trip."""
        objs = list(objects)
        if not objs:
            return []
        return self.collect(
            [vmodl.query.PropertyCollector.ObjectSpec(obj=o, skip=False) for o in objs],
            {obj_type: properties},
        )

    def properties(self, obj: Any, properties: Sequence[str]) -> dict[str, Any]:
        """``{property: value}`` of one object (unset properties are absent), one round trip.

        A deleted object raises ``vmodl.fault.ManagedObjectNotFound``, as vCenter does.
        """
        found = self.properties_of([obj], type(obj), properties)
        if not found:
            raise vmodl.fault.ManagedObjectNotFound(obj=obj, msg=f"{obj._moId} is gone")
        return found[0][1]

    def collect(
        self, object_specs: Sequence[Any], wanted: Mapping[type, Sequence[str]]
    ) -> list[tuple[Any, dict[str, Any]]]:
        """One ``RetrievePropertiesEx``: ``wanted`` properties of every object the specs reach.

        ``object_specs`` are ``ObjectSpec`` (with ``traverse`` select sets to
        follow references), ``wanted`` maps a managed object type (subtypes
        included) to property paths.
        """
        spec = vmodl.query.PropertyCollector.FilterSpec(
            objectSet=list(object_specs),
            propSet=[
                vmodl.query.PropertyCollector.PropertySpec(type=t, pathSet=list(paths))
                for t, paths in wanted.items()
            ],
        )
        return self._collect(spec)

    def _collect(self, spec) -> list[tuple[Any, dict[str, Any]]]:
        pc = self.content.propertyCollector
        out: list[tuple[Any, dict[str, Any]]] = []
        result = pc.RetrievePropertiesEx([spec], vmodl.query.PropertyCollector.RetrieveOptions())
        while result is not None:
            for obj in result.objects:
                out.append((obj.obj, {p.name: p.val for p in obj.propSet or []}))
            if not result.token:
                break
            result = pc.ContinueRetrievePropertiesEx(result.token)
        return out


def traverse(obj_type: type, path: str, *then: Any, name: str | None = None) -> Any:
    """A ``TraversalSpec``: from objects of ``obj_type`` follow the reference property ``path``."""
    return vmodl.query.PropertyCollector.TraversalSpec(
        name=name, type=obj_type, path=path, skip=False, selectSet=list(then)
    )


def object_spec(obj: Any, *select: Any, skip: bool = False) -> Any:
    """An ``ObjectSpec`` starting at ``obj`` (``skip``: only what the traversals reach)."""
    return vmodl.query.PropertyCollector.ObjectSpec(obj=obj, skip=skip, selectSet=list(select))


def close_all() -> int:
    """Close every client of this process whose keep-alive runs; return how many.

    For a process that is done with vCenter but lives on (a pytest-xdist
    process waits, its tests over, for the others to finish): a session
    nobody closed, such as the VMs page's or the health monitor's kept one,
    would otherwise go on touching a vCenter that is gone, and log each failure.
    """
    clients = list(_kept_alive)
    for client in clients:
        client.close()
    return len(clients)
