// placeholder; replaced when the peer-credential addon lands
