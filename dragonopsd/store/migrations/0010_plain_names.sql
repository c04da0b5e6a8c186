-- Names may no longer hold control characters (they ended up as lines of their own in mail
-- bodies and chat messages). Stored monitor specs are validated when read, so names saved
-- before are folded here, every control character (C0 but NUL, DEL, C1, U+2028, U+2029) to a
-- space, the way notifications render them. Generated: a few replace() per statement (SQLite's
-- parser has a small stack), the monitors' name column first, then the spec from it.

UPDATE monitors SET name = replace(replace(replace(replace(replace(replace(name, char(1), ' '), char(2), ' '), char(3), ' '), char(4), ' '), char(5), ' '), char(6), ' ')
WHERE name <> replace(replace(replace(replace(replace(replace(name, char(1), ' '), char(2), ' '), char(3), ' '), char(4), ' '), char(5), ' '), char(6), ' ');

UPDATE monitors SET name = replace(replace(replace(replace(replace(replace(name, char(7), ' '), char(8), ' '), char(9), ' '), char(10), ' '), char(11), ' '), char(12), ' ')
WHERE name <> replace(replace(replace(replace(replace(replace(name, char(7), ' '), char(8), ' '), char(9), ' '), char(10), ' '), char(11), ' '), char(12), ' ');

UPDATE monitors SET name = replace(replace(replace(replace(replace(replace(name, char(13), ' '), char(14), ' '), char(15), ' '), char(16), ' '), char(17), ' '), char(18), ' ')
WHERE name <> replace(replace(replace(replace(replace(replace(name, char(13), ' '), char(14), ' '), char(15), ' '), char(16), ' '), char(17), ' '), char(18), ' ');

UPDATE monitors SET name = replace(replace(replace(replace(replace(replace(name, char(19), ' '), char(20), ' '), char(21), ' '), char(22), ' '), char(23), ' '), char(24), ' ')
WHERE name <> replace(replace(replace(replace(replace(replace(name, char(19), ' '), char(20), ' '), char(21), ' '), char(22), ' '), char(23), ' '), char(24), ' ');

UPDATE monitors SET name = replace(replace(replace(replace(replace(replace(name, char(25), ' '), char(26), ' '), char(27), ' '), char(28), ' '), char(29), ' '), char(30), ' ')
WHERE name <> replace(replace(replace(replace(replace(replace(name, char(25), ' '), char(26), ' '), char(27), ' '), char(28), ' '), char(29), ' '), char(30), ' ');

UPDATE monitors SET name = replace(replace(replace(replace(replace(replace(name, char(31), ' '), char(127), ' '), char(128), ' '), char(129), ' '), char(130), ' '), char(131), ' ')
WHERE name <> replace(replace(replace(replace(replace(replace(name, char(31), ' '), char(127), ' '), char(128), ' '), char(129), ' '), char(130), ' '), char(131), ' ');

UPDATE monitors SET name = replace(replace(replace(replace(replace(replace(name, char(132), ' '), char(133), ' '), char(134), ' '), char(135), ' '), char(136), ' '), char(137), ' ')
WHERE name <> replace(replace(replace(replace(replace(replace(name, char(132), ' '), char(133), ' '), char(134), ' '), char(135), ' '), char(136), ' '), char(137), ' ');

UPDATE monitors SET name = replace(replace(replace(replace(replace(replace(name, char(138), ' '), char(139), ' '), char(140), ' '), char(141), ' '), char(142), ' '), char(143), ' ')
WHERE name <> replace(replace(replace(replace(replace(replace(name, char(138), ' '), char(139), ' '), char(140), ' '), char(141), ' '), char(142), ' '), char(143), ' ');

UPDATE monitors SET name = replace(replace(replace(replace(replace(replace(name, char(144), ' '), char(145), ' '), char(146), ' '), char(147), ' '), char(148), ' '), char(149), ' ')
WHERE name <> replace(replace(replace(replace(replace(replace(name, char(144), ' '), char(145), ' '), char(146), ' '), char(147), ' '), char(148), ' '), char(149), ' ');

UPDATE monitors SET name = replace(replace(replace(replace(replace(replace(name, char(150), ' '), char(151), ' '), char(152), ' '), char(153), ' '), char(154), ' '), char(155), ' ')
WHERE name <> replace(replace(replace(replace(replace(replace(name, char(150), ' '), char(151), ' '), char(152), ' '), char(153), ' '), char(154), ' '), char(155), ' ');

UPDATE monitors SET name = replace(replace(replace(replace(replace(replace(name, char(156), ' '), char(157), ' '), char(158), ' '), char(159), ' '), char(8232), ' '), char(8233), ' ')
WHERE name <> replace(replace(replace(replace(replace(replace(name, char(156), ' '), char(157), ' '), char(158), ' '), char(159), ' '), char(8232), ' '), char(8233), ' ');

UPDATE notification_channels SET name = replace(replace(replace(replace(replace(replace(name, char(1), ' '), char(2), ' '), char(3), ' '), char(4), ' '), char(5), ' '), char(6), ' ')
WHERE name <> replace(replace(replace(replace(replace(replace(name, char(1), ' '), char(2), ' '), char(3), ' '), char(4), ' '), char(5), ' '), char(6), ' ');

UPDATE notification_channels SET name = replace(replace(replace(replace(replace(replace(name, char(7), ' '), char(8), ' '), char(9), ' '), char(10), ' '), char(11), ' '), char(12), ' ')
WHERE name <> replace(replace(replace(replace(replace(replace(name, char(7), ' '), char(8), ' '), char(9), ' '), char(10), ' '), char(11), ' '), char(12), ' ');

UPDATE notification_channels SET name = replace(replace(replace(replace(replace(replace(name, char(13), ' '), char(14), ' '), char(15), ' '), char(16), ' '), char(17), ' '), char(18), ' ')
WHERE name <> replace(replace(replace(replace(replace(replace(name, char(13), ' '), char(14), ' '), char(15), ' '), char(16), ' '), char(17), ' '), char(18), ' ');

UPDATE notification_channels SET name = replace(replace(replace(replace(replace(replace(name, char(19), ' '), char(20), ' '), char(21), ' '), char(22), ' '), char(23), ' '), char(24), ' ')
WHERE name <> replace(replace(replace(replace(replace(replace(name, char(19), ' '), char(20), ' '), char(21), ' '), char(22), ' '), char(23), ' '), char(24), ' ');

UPDATE notification_channels SET name = replace(replace(replace(replace(replace(replace(name, char(25), ' '), char(26), ' '), char(27), ' '), char(28), ' '), char(29), ' '), char(30), ' ')
WHERE name <> replace(replace(replace(replace(replace(replace(name, char(25), ' '), char(26), ' '), char(27), ' '), char(28), ' '), char(29), ' '), char(30), ' ');

UPDATE notification_channels SET name = replace(replace(replace(replace(replace(replace(name, char(31), ' '), char(127), ' '), char(128), ' '), char(129), ' '), char(130), ' '), char(131), ' ')
WHERE name <> replace(replace(replace(replace(replace(replace(name, char(31), ' '), char(127), ' '), char(128), ' '), char(129), ' '), char(130), ' '), char(131), ' ');

UPDATE notification_channels SET name = replace(replace(replace(replace(replace(replace(name, char(132), ' '), char(133), ' '), char(134), ' '), char(135), ' '), char(136), ' '), char(137), ' ')
WHERE name <> replace(replace(replace(replace(replace(replace(name, char(132), ' '), char(133), ' '), char(134), ' '), char(135), ' '), char(136), ' '), char(137), ' ');

UPDATE notification_channels SET name = replace(replace(replace(replace(replace(replace(name, char(138), ' '), char(139), ' '), char(140), ' '), char(141), ' '), char(142), ' '), char(143), ' ')
WHERE name <> replace(replace(replace(replace(replace(replace(name, char(138), ' '), char(139), ' '), char(140), ' '), char(141), ' '), char(142), ' '), char(143), ' ');

UPDATE notification_channels SET name = replace(replace(replace(replace(replace(replace(name, char(144), ' '), char(145), ' '), char(146), ' '), char(147), ' '), char(148), ' '), char(149), ' ')
WHERE name <> replace(replace(replace(replace(replace(replace(name, char(144), ' '), char(145), ' '), char(146), ' '), char(147), ' '), char(148), ' '), char(149), ' ');

UPDATE notification_channels SET name = replace(replace(replace(replace(replace(replace(name, char(150), ' '), char(151), ' '), char(152), ' '), char(153), ' '), char(154), ' '), char(155), ' ')
WHERE name <> replace(replace(replace(replace(replace(replace(name, char(150), ' '), char(151), ' '), char(152), ' '), char(153), ' '), char(154), ' '), char(155), ' ');

UPDATE notification_channels SET name = replace(replace(replace(replace(replace(replace(name, char(156), ' '), char(157), ' '), char(158), ' '), char(159), ' '), char(8232), ' '), char(8233), ' ')
WHERE name <> replace(replace(replace(replace(replace(replace(name, char(156), ' '), char(157), ' '), char(158), ' '), char(159), ' '), char(8232), ' '), char(8233), ' ');

UPDATE monitors SET spec = json_set(spec, '$.name', name)
WHERE json_extract(spec, '$.name') <> name;
