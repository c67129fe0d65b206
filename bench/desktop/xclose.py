#!/usr/bin/python3
"""Closes top-level X windows the way a window manager's close button does: sends each a
WM_DELETE_WINDOW client message (ICCCM), which the toolkit turns into a close request.
Plain libX11 through ctypes (no python-xlib, xdotool or window manager needed).

Usage: xclose.py [TITLE_SUBSTRING]   (DISPLAY and XAUTHORITY from the environment)
Closes every mapped top-level window (whose title contains TITLE_SUBSTRING). Prints the
titles of the windows it asked to close; exits 1 if there were none.
"""
import ctypes
import ctypes.util
import sys

x = ctypes.CDLL(ctypes.util.find_library("X11") or "libX11.so.6")
Window = Atom = ctypes.c_ulong
x.XOpenDisplay.restype = ctypes.c_void_p
x.XOpenDisplay.argtypes = [ctypes.c_char_p]
x.XDefaultRootWindow.restype = Window
x.XDefaultRootWindow.argtypes = [ctypes.c_void_p]
x.XInternAtom.restype = Atom
x.XInternAtom.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]
x.XQueryTree.argtypes = [ctypes.c_void_p, Window, ctypes.POINTER(Window), ctypes.POINTER(Window),
                         ctypes.POINTER(ctypes.POINTER(Window)), ctypes.POINTER(ctypes.c_uint)]
x.XFetchName.argtypes = [ctypes.c_void_p, Window, ctypes.POINTER(ctypes.c_char_p)]
x.XFree.argtypes = [ctypes.c_void_p]
x.XSendEvent.argtypes = [ctypes.c_void_p, Window, ctypes.c_int, ctypes.c_long, ctypes.c_void_p]
x.XFlush.argtypes = [ctypes.c_void_p]
x.XCloseDisplay.argtypes = [ctypes.c_void_p]
x.XGetWindowProperty.argtypes = [ctypes.c_void_p, Window, Atom, ctypes.c_long, ctypes.c_long, ctypes.c_int,
                                 Atom, ctypes.POINTER(Atom), ctypes.POINTER(ctypes.c_int),
                                 ctypes.POINTER(ctypes.c_ulong), ctypes.POINTER(ctypes.c_ulong),
                                 ctypes.POINTER(ctypes.c_void_p)]


class XWindowAttributes(ctypes.Structure):
    _fields_ = [("x", ctypes.c_int), ("y", ctypes.c_int), ("width", ctypes.c_int), ("height", ctypes.c_int),
                ("border_width", ctypes.c_int), ("depth", ctypes.c_int), ("visual", ctypes.c_void_p),
                ("root", Window), ("class_", ctypes.c_int), ("bit_gravity", ctypes.c_int),
                ("win_gravity", ctypes.c_int), ("backing_store", ctypes.c_int),
                ("backing_planes", ctypes.c_ulong), ("backing_pixel", ctypes.c_ulong),
                ("save_under", ctypes.c_int), ("colormap", ctypes.c_ulong), ("map_installed", ctypes.c_int),
                ("map_state", ctypes.c_int), ("all_event_masks", ctypes.c_long),
                ("your_event_mask", ctypes.c_long), ("do_not_propagate_mask", ctypes.c_long),
                ("override_redirect", ctypes.c_int), ("screen", ctypes.c_void_p)]


x.XGetWindowAttributes.argtypes = [ctypes.c_void_p, Window, ctypes.POINTER(XWindowAttributes)]
IS_VIEWABLE = 2

CLIENT_MESSAGE = 33


class ClientMessage(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_int),
        ("serial", ctypes.c_ulong),
        ("send_event", ctypes.c_int),
        ("display", ctypes.c_void_p),
        ("window", Window),
        ("message_type", Atom),
        ("format", ctypes.c_int),
        ("data", ctypes.c_long * 5),
    ]


class XEvent(ctypes.Union):
    _fields_ = [("xclient", ClientMessage), ("pad", ctypes.c_long * 24)]


def title(dpy, w, net_wm_name):
    """_NET_WM_NAME (UTF-8, what GTK sets) or else WM_NAME."""
    kind, fmt, n, after, data = Atom(), ctypes.c_int(), ctypes.c_ulong(), ctypes.c_ulong(), ctypes.c_void_p()
    ok = x.XGetWindowProperty(dpy, w, net_wm_name, 0, 1024, 0, 0, ctypes.byref(kind), ctypes.byref(fmt),
                              ctypes.byref(n), ctypes.byref(after), ctypes.byref(data))
    if ok == 0 and data.value:
        text = ctypes.string_at(data.value, n.value).decode(errors="replace")
        x.XFree(data)
        if text:
            return text
    name = ctypes.c_char_p()
    if x.XFetchName(dpy, w, ctypes.byref(name)) and name.value:
        text = name.value.decode(errors="replace")
        x.XFree(name)
        return text
    return ""


def main():
    want = sys.argv[1] if len(sys.argv) > 1 else ""
    dpy = x.XOpenDisplay(None)
    if not dpy:
        sys.exit("xclose: cannot open the display")
    root = x.XDefaultRootWindow(dpy)
    protocols = x.XInternAtom(dpy, b"WM_PROTOCOLS", 0)
    delete = x.XInternAtom(dpy, b"WM_DELETE_WINDOW", 0)
    net_wm_name = x.XInternAtom(dpy, b"_NET_WM_NAME", 0)
    r, p, kids, n = Window(), Window(), ctypes.POINTER(Window)(), ctypes.c_uint()
    x.XQueryTree(dpy, root, ctypes.byref(r), ctypes.byref(p), ctypes.byref(kids), ctypes.byref(n))
    closed = []
    for i in range(n.value):
        w = kids[i]
        attrs = XWindowAttributes()
        if not x.XGetWindowAttributes(dpy, w, ctypes.byref(attrs)) or attrs.map_state != IS_VIEWABLE:
            continue
        name = title(dpy, w, net_wm_name)
        if want not in name:
            continue
        ev = XEvent()
        ev.xclient.type = CLIENT_MESSAGE
        ev.xclient.window = w
        ev.xclient.message_type = protocols
        ev.xclient.format = 32
        ev.xclient.data[0] = delete
        ev.xclient.data[1] = 0  # CurrentTime
        x.XSendEvent(dpy, w, 0, 0, ctypes.byref(ev))
        closed.append(name)
    if kids:
        x.XFree(kids)
    x.XFlush(dpy)
    x.XCloseDisplay(dpy)
    for t in closed:
        print(t)
    sys.exit(0 if closed else 1)


if __name__ == "__main__":
    main()
