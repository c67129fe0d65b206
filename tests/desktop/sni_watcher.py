#!/usr/bin/python3
"""A minimal StatusNotifierWatcher for tests, on the private session bus.

The desktop app's tray is a StatusNotifierItem (libayatana-appindicator); it registers with
the watcher once it has a menu. This watcher records registrations and answers queries, so
a test can read the real tray: its label (XAyatanaLabel) and its com.canonical.dbusmenu
layout.

Usage: sni_watcher.py serve STATE_FILE   -- run the watcher; writes registered items to
                                            STATE_FILE as JSON lines
       sni_watcher.py read STATE_FILE    -- print {"label", "icon", "menu": [labels]} of
                                            the last registered item as JSON
"""
import json
import sys

import dbus
import dbus.service

WATCHER = "org.kde.StatusNotifierWatcher"
ITEM = "org.kde.StatusNotifierItem"


def serve(state_file):
    from dbus.mainloop.glib import DBusGMainLoop
    from gi.repository import GLib

    DBusGMainLoop(set_as_default=True)
    bus = dbus.SessionBus()

    class Watcher(dbus.service.Object):
        def __init__(self):
            super().__init__(bus, "/StatusNotifierWatcher")
            self.items = []

        @dbus.service.method(WATCHER, in_signature="s", out_signature="", sender_keyword="sender")
        def RegisterStatusNotifierItem(self, service, sender=None):
            # Items pass either a bus name or an object path; with a path, the sender is the service.
            path = service if service.startswith("/") else "/StatusNotifierItem"
            name = sender if service.startswith("/") else service
            entry = {"service": name, "path": path}
            self.items.append(entry)
            with open(state_file, "a") as f:
                f.write(json.dumps(entry) + "\n")
            self.StatusNotifierItemRegistered(f"{name}{path}")

        @dbus.service.method(WATCHER, in_signature="s", out_signature="")
        def RegisterStatusNotifierHost(self, service):
            pass

        @dbus.service.signal(WATCHER, signature="s")
        def StatusNotifierItemRegistered(self, item):
            pass

        @dbus.service.method(dbus.PROPERTIES_IFACE, in_signature="ss", out_signature="v")
        def Get(self, interface, prop):
            return self.GetAll(interface)[prop]

        @dbus.service.method(dbus.PROPERTIES_IFACE, in_signature="s", out_signature="a{sv}")
        def GetAll(self, interface):
            return {
                "RegisteredStatusNotifierItems": dbus.Array([i["service"] + i["path"] for i in self.items], signature="s"),
                "IsStatusNotifierHostRegistered": dbus.Boolean(True),
                "ProtocolVersion": dbus.Int32(0),
            }

    # Both must stay referenced: a collected BusName releases the name.
    watcher = Watcher()
    name = dbus.service.BusName(WATCHER, bus)
    open(state_file, "a").close()
    GLib.MainLoop().run()
    del watcher, name


def labels(node):
    _id, props, children = node
    out = []
    label = props.get("label")
    if label is not None and props.get("type", "standard") != "separator":
        out.append(str(label).replace("_", ""))
    for child in children:
        out.extend(labels(child))
    return out


def read(state_file):
    with open(state_file) as f:
        lines = [json.loads(l) for l in f if l.strip()]
    if not lines:
        print(json.dumps({"registered": False}))
        return
    item = lines[-1]
    bus = dbus.SessionBus()
    obj = bus.get_object(item["service"], item["path"])
    props = dbus.Interface(obj, dbus.PROPERTIES_IFACE).GetAll(ITEM)
    menu_path = props.get("Menu")
    menu = []
    if menu_path:
        m = bus.get_object(item["service"], menu_path)
        _rev, layout = dbus.Interface(m, "com.canonical.dbusmenu").GetLayout(0, -1, [])
        menu = labels(layout)
    print(json.dumps({
        "registered": True,
        "label": str(props.get("XAyatanaLabel", "")),
        "icon": str(props.get("IconName", "")),
        "title": str(props.get("Title", "")),
        "menu": menu,
    }))


if __name__ == "__main__":
    {"serve": serve, "read": read}[sys.argv[1]](sys.argv[2])
